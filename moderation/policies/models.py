from __future__ import annotations

from django.conf import settings
from django.db import models

from moderation.policies.spec import PolicySpec


class Policy(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    # New videos get a decision under every policy that auto-applies.
    auto_apply = models.BooleanField(default=True)
    # The model that decides under this policy; empty means the globally serving model.
    serving_model = models.ForeignKey(
        "moderation.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="serving_policies"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "policies"  # the admin's index read "Policys"

    def __str__(self) -> str:
        return self.name


class PolicyVersion(models.Model):
    """An immutable snapshot of a policy's taxonomy and rules.

    ``taxonomy`` is a list of major categories, each ``{"key", "name", "tags": [{"key", "name",
    "keywords": [...]}]}``; ``safe_label`` is the label of non-violative content.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"

    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    is_active = models.BooleanField(default=False)

    class OutputFormat(models.TextChoices):
        KUAIMOD = "kuaimod", "KuaiMod five-stage CoT"
        BLM = "blm", "BLM-Guard <think>/<answer>"

    safe_label = models.CharField(max_length=100, default="正向")
    output_format = models.CharField(max_length=20, choices=OutputFormat.choices, default=OutputFormat.KUAIMOD)
    taxonomy = models.JSONField(default=list)
    notes = models.TextField(blank=True)
    # The version the editor opened to write this one (the active one unless they chose another). When it is
    # no longer the active version, publishing replaces the active version's own changes: the publish service
    # asks for a confirmation then (``policy_version_publish``).
    based_on = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name="started from"
    )
    # Written once, when the version is published over an active version it was not started from: which
    # version it replaced, who confirmed it, and why.
    publish_note = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["policy", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "number"], name="uniq_policy_version_number"),
            models.UniqueConstraint(
                fields=["policy"], condition=models.Q(is_active=True), name="one_active_version_per_policy"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.policy.name} v{self.number}"

    def spec(self) -> PolicySpec:
        """What inference backends, the review form and training need of this version."""
        return PolicySpec(taxonomy=self.taxonomy, safe_label=self.safe_label, output_format=self.output_format)

    def label_names(self) -> dict[str, str]:
        names = {self.safe_label: "Non-violative"}
        for major in self.taxonomy:
            for tag in major.get("tags", []):
                names[tag["key"]] = tag.get("name", tag["key"])
        return names
