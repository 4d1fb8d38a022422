from moderation.api.urls import OptionalSlashRouter
from training.api.views import EvaluationRunViewSet, TrainingJobViewSet

router = OptionalSlashRouter()
router.include_root_view = False
router.register("jobs", TrainingJobViewSet, basename="api-training-job")
router.register("evaluations", EvaluationRunViewSet, basename="api-evaluation")
urlpatterns = router.urls
