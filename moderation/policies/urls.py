from django.urls import path

from moderation.policies import views

urlpatterns = [
    path("policies/", views.policy_list, name="policy_list"),
    path("policies/<int:pk>/", views.policy_detail, name="policy_detail"),
]
