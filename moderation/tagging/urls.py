from django.urls import path

from moderation.tagging import views

urlpatterns = [
    path("tags/", views.tag_queue, name="tag_queue"),
    path("tags/claim/", views.tag_claim_next, name="tag_claim_next"),
    path("tags/task/<int:pk>/", views.tag_task, name="tag_task"),
    path("tags/video/<int:video_id>/panel/", views.tag_panel, name="tag_panel"),
    path("tags/video/<int:video_id>/submit/", views.tag_submit, name="tag_submit"),
    path("tags/video/<int:video_id>/try-again/", views.tag_try_again, name="tag_try_again"),
    path("tags/search/", views.tag_search, name="tag_search"),
    path("tags/ranker/", views.tag_ranker, name="tag_ranker"),
    path("tags/ranker/train/", views.tag_ranker_train, name="tag_ranker_train"),
    path("tags/ranker/<int:pk>/activate/", views.tag_ranker_activate, name="tag_ranker_activate"),
    path("tags/vocabulary/", views.tag_vocabulary, name="tag_vocabulary"),
    path("tags/vocabulary/<int:pk>/", views.tag_edit, name="tag_edit"),
    path("tags/vocabulary/import/", views.tag_import, name="tag_import"),
    path("tags/sets/save/", views.tag_set_save, name="tag_set_save"),
    path("tags/curation/", views.tag_curation, name="tag_curation"),
    path("tags/proposals/<int:pk>/", views.tag_proposal_decide, name="tag_proposal_decide"),
    path("tags/proposals/<int:pk>/sightings/", views.tag_proposal_sightings, name="tag_proposal_sightings"),
]
