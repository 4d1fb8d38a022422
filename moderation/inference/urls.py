from django.urls import path

from moderation.inference import views

urlpatterns = [
    path("cascade/", views.cascade, name="cascade"),
    path("cascade/train/", views.cascade_train, name="cascade_train"),
    path("cascade/threshold/", views.cascade_threshold, name="cascade_threshold"),
    path("cascade/target/", views.cascade_target, name="cascade_target"),
    path("cascade/off/", views.cascade_off, name="cascade_off"),
    path("policies/versions/<int:pk>/impact/", views.policy_version_impact, name="policy_version_impact"),
]
