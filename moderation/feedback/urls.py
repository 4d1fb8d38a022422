from django.urls import path

from moderation.feedback.api import FeedbackEventsView

urlpatterns = [
    path("events/", FeedbackEventsView.as_view(), name="feedback_events"),
]
