from django.urls import path

from moderation.integrations import views

urlpatterns = [
    path("integrations/", views.integration_list, name="integration_list"),
    path("integrations/add/", views.integration_add, name="integration_add"),
    path("integrations/<int:pk>/token/", views.integration_token, name="integration_token"),
    path("integrations/<int:pk>/switch/", views.integration_switch_view, name="integration_switch"),
    path("integrations/<int:pk>/rotate/", views.integration_rotate, name="integration_token_rotate"),
    path("integrations/<int:pk>/endpoints/add/", views.endpoint_add, name="webhook_endpoint_add"),
    path("integrations/endpoints/<int:pk>/", views.endpoint_detail, name="webhook_endpoint"),
    path("integrations/endpoints/<int:pk>/toggle/", views.endpoint_toggle, name="webhook_endpoint_toggle"),
    path("integrations/endpoints/<int:pk>/events/", views.endpoint_events, name="webhook_endpoint_events"),
    path("integrations/endpoints/<int:pk>/test/", views.endpoint_test, name="webhook_endpoint_test"),
    path("integrations/deliveries/<int:pk>/test-outcome/", views.delivery_test_outcome, name="webhook_test_outcome"),
    path("integrations/deliveries/<int:pk>/redeliver/", views.delivery_redeliver, name="webhook_redeliver"),
]
