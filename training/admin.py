from django.contrib import admin

from training.models import RetrainRule


@admin.register(RetrainRule)
class RetrainRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "condition", "threshold", "enabled", "last_fired_at", "last_job")
    readonly_fields = ("last_fired_at", "last_trigger", "last_job", "last_error")
