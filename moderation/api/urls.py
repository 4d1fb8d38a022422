from rest_framework.routers import DefaultRouter

from moderation.api.views import DecisionViewSet, VideoViewSet

router = DefaultRouter()
router.register("videos", VideoViewSet, basename="api-video")
router.register("decisions", DecisionViewSet, basename="api-decision")
urlpatterns = router.urls
