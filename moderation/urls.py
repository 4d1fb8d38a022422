from django.urls import include, path

app_name = "moderation"
urlpatterns = [
    path("", include("moderation.media.urls")),
    path("", include("moderation.review.urls")),
    path("", include("moderation.policies.urls")),
    path("", include("moderation.inference.urls")),
    path("", include("moderation.reproduction.urls")),
    path("", include("moderation.tagging.urls")),
    path("", include("moderation.integrations.urls")),
    path("", include("moderation.ops.urls")),
    path("api/feedback/", include("moderation.feedback.urls")),
    path("api/", include("moderation.api.urls")),
]
