from django.urls import path

from annotation import views

app_name = "annotation"
urlpatterns = [
    path("corrections/", views.correction_list, name="correction_list"),
    path("corrections/<int:decision_id>/", views.correction_edit, name="correction_edit"),
]
