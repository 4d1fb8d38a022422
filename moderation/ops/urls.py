from django.urls import path

from moderation.ops import views

urlpatterns = [
    path("ops/", views.dashboard, name="ops_dashboard"),
    path("ops/routing-repair/", views.routing_repair, name="ops_routing_repair"),
]
