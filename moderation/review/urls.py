from django.urls import path

from moderation.review import views

urlpatterns = [
    path("review/", views.queue, name="queue"),
    path("videos/<int:pk>/retry/", views.video_retry, name="video_retry"),
    path("videos/<int:pk>/dismiss/", views.video_dismiss, name="video_dismiss"),
    path("review/agreement/", views.agreement, name="review_agreement"),
    path("review/claim/", views.claim_next, name="claim_next"),
    path("review/q/<slug:slug>/", views.queue_detail, name="queue_detail"),
    path("review/q/<slug:slug>/claim/", views.claim_next, name="queue_claim_next"),
    path("review/reveal/", views.reveal, name="review_reveal"),
    path("review/<int:pk>/", views.review_task, name="review_task"),
    path("review/<int:pk>/submit/", views.submit, name="review_submit"),
    path("review/<int:pk>/skip/", views.skip, name="review_skip"),
    path("review/<int:pk>/escalate/", views.escalate, name="review_escalate"),
    path("review/<int:pk>/release/", views.release, name="review_release"),
    path("review/<int:pk>/rerun/", views.rerun, name="review_rerun"),
    path("review/<int:pk>/cot/", views.cot_panel, name="review_cot"),
]
