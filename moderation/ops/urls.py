from django.urls import path

from moderation.ops import views

urlpatterns = [
    path("ops/", views.dashboard, name="ops_dashboard"),
    path("ops/routing-repair/", views.routing_repair, name="ops_routing_repair"),
    path("ops/routing-recheck/", views.routing_recheck, name="ops_routing_recheck"),
    path("ops/routing-repair/retry/", views.missing_decisions_retry_view, name="ops_missing_decisions_retry"),
    path("ops/routing-repair/failed/", views.missing_decisions_list, name="ops_missing_decisions"),
    path(
        "ops/routing-repair/failed/<int:video_id>/retry/",
        views.missing_decision_retry_view,
        name="ops_missing_decision_retry",
    ),
    path(
        "ops/routing-repair/failed/<int:video_id>/dismiss/",
        views.missing_decision_dismiss_view,
        name="ops_missing_decision_dismiss",
    ),
    path("ops/policies/<int:pk>/missing/", views.policy_missing, name="ops_policy_missing"),
    path("ops/policies/<int:pk>/missing/repair/", views.policy_missing_repair, name="ops_policy_missing_repair"),
    path("ops/repro-failed/<int:video_id>/retry/", views.repro_failed_retry_view, name="ops_repro_failed_retry"),
    path("ops/repro-failed/<int:video_id>/dismiss/", views.repro_failed_dismiss_view, name="ops_repro_failed_dismiss"),
]
