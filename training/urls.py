from django.urls import path

from training import views

app_name = "training"
urlpatterns = [
    path("jobs/", views.job_list, name="job_list"),
    path("jobs/start/", views.job_start, name="job_start"),
    path("jobs/<int:pk>/", views.job_detail, name="job_detail"),
    path("jobs/<int:pk>/cancel/", views.job_cancel, name="job_cancel"),
    path("datasets/build/", views.dataset_build, name="dataset_build"),
    path("datasets/tag-events/", views.tag_events_download, name="tag_events_download"),
    path("datasets/<int:pk>/download/", views.dataset_download, name="dataset_download"),
    path("models/", views.model_list, name="model_list"),
    path("models/<int:pk>/promote/", views.model_promote, name="model_promote"),
    path("models/<int:pk>/shadow/", views.model_shadow, name="model_shadow"),
    path("policies/<int:pk>/model/", views.policy_model_choose, name="policy_model_choose"),
    path("evaluations/start/", views.evaluation_create, name="evaluation_start"),
    path("evaluations/compare/", views.evaluation_compare, name="evaluation_compare"),
    path("evaluations/<int:pk>/", views.evaluation_detail, name="evaluation_detail"),
]
