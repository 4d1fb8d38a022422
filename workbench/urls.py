from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from workbench import views
from workbench.form_routes import post_only
from workbench.forms import nul_checked_by_form
from workbench.signin import AdminSignInForm, SignInForm

admin.site.login_form = AdminSignInForm

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", nul_checked_by_form(auth_views.LoginView.as_view(authentication_form=SignInForm)), name="login"),
    path("logout/", post_only(auth_views.LogoutView.as_view()), name="logout"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "api/docs/",
        # Our page around Swagger UI: a title, lang and landmarks (templates/workbench/api_docs.html). Split: its
        # settings script is its own response (?script), not inline, which the Content-Security-Policy refuses.
        SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="workbench/api_docs.html"),
        name="api-docs",
    ),
    path("api/token/", views.obtain_token, name="api-token"),
    path("account/api-token/", views.api_token_page, name="api-token-page"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("csp-report/", views.csp_report, name="csp-report"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
    # Training jobs and evaluations for scripts (admins): the training app's own router.
    path("api/training/", include("training.api.urls")),
    path("", include("moderation.urls")),
    path("annotation/", include("annotation.urls")),
    path("training/", include("training.urls")),
    # Media files (videos, keyframes). Behind a reverse proxy in production (see README).
    path(f"{settings.MEDIA_URL.strip('/')}/<path:path>", views.media, name="media"),
]

handler400 = views.bad_request  # a form too large to read says so (workbench/views.py)
handler404 = views.not_found  # says the reason a view gave (workbench/views.py)
handler500 = views.server_error  # its <style> by the Content-Security-Policy's nonce (workbench/views.py)
