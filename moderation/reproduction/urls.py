from django.urls import path

from moderation.reproduction import views

urlpatterns = [
    path("repro/", views.pair_queue, name="repro_queue"),
    path("repro/reviewed/", views.pairs_reviewed, name="repro_reviewed"),
    path("repro/claim/", views.pair_claim_next, name="repro_claim_next"),
    path("repro/<int:pk>/", views.pair_detail, name="repro_pair"),
    path("repro/<int:pk>/claim/", views.pair_claim, name="repro_claim"),
    path("repro/<int:pk>/submit/", views.pair_submit, name="repro_submit"),
    path("repro/<int:pk>/release/", views.pair_release, name="repro_release"),
    path("videos/<int:pk>/pairs/", views.video_pairs, name="video_repro_pairs"),
]
