from django.urls import path

from annotation import views

app_name = "annotation"
urlpatterns = [
    path("corrections/", views.correction_list, name="correction_list"),
    path("corrections/<int:decision_id>/", views.correction_edit, name="correction_edit"),
    path("corrections/<int:decision_id>/review/", views.correction_review, name="correction_review"),
    path("tag2cot/", views.tag2cot_list, name="tag2cot_list"),
    path("tag2cot/queue/", views.tag2cot_queue, name="tag2cot_queue"),
    path("tag2cot/<int:pk>/", views.tag2cot_write, name="tag2cot_write"),
    path("tag2cot/<int:pk>/claim/", views.tag2cot_claim, name="tag2cot_claim"),
    path("tag2cot/<int:pk>/release/", views.tag2cot_release, name="tag2cot_release"),
    path("adjudications/", views.adjudication_list, name="adjudication_list"),
    path("adjudications/<int:pk>/", views.adjudication_detail, name="adjudication_detail"),
    path("labelstudio/", views.labelstudio_export, name="labelstudio_export"),
]
