from django.urls import path

from moderation.ops import views

urlpatterns = [path("ops/", views.dashboard, name="ops_dashboard")]
