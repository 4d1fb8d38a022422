from django.urls import path

from moderation.policies import views

urlpatterns = [
    path("policies/", views.policy_list, name="policy_list"),
    path("policies/<int:pk>/", views.policy_detail, name="policy_detail"),
    path("policies/<int:pk>/edit/", views.policy_edit, name="policy_edit"),
    path("policies/<int:pk>/diff/", views.policy_diff, name="policy_diff"),
    path("policies/versions/<int:pk>/", views.policy_version_detail, name="policy_version"),
    path("policies/versions/<int:pk>/publish/", views.policy_version_publish, name="policy_version_publish"),
    path("policies/versions/<int:pk>/activate/", views.policy_version_activate, name="policy_version_activate"),
]
