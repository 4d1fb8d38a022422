from django.urls import path

from training import views

app_name = "training"
urlpatterns = [
    path("jobs/", views.job_list, name="job_list"),
    path("jobs/start/", views.job_start, name="job_start"),
    path("jobs/<int:pk>/", views.job_detail, name="job_detail"),
    path("jobs/<int:pk>/cancel/", views.job_cancel, name="job_cancel"),
    path("datasets/build/", views.dataset_build, name="dataset_build"),
    path("datasets/<int:pk>/download/", views.dataset_download, name="dataset_download"),
]
