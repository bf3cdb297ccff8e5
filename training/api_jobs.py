"""Fine-tuning API in the OpenAI shape: /api/training/fine_tuning/jobs (+ /cancel, /resume,
/events, /checkpoints), /api/training/models (+ /activate, /restore_previous), /api/training/evaluations."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from accounts.viewsets import PolicyReadOnlyViewSet, drf_validation_error

from . import job_selectors as selectors
from . import job_services as services
from .finetune.hyperparameters import METHODS
from .models import FineTuningJob
from .policy import dataset_version_policy
from .policy_jobs import evaluation_policy, fine_tuning_job_policy, model_version_policy


def _int_param(request, name: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
    """A query parameter as an integer in [minimum, maximum] (clamped); not an integer: a 400."""
    raw = request.query_params.get(name) or default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise serializers.ValidationError({name: "An integer is required."}) from None
    return max(minimum, value if maximum is None else min(value, maximum))


def _ts(value) -> int | None:
    return int(value.timestamp()) if value else None


def _visible_version(request, pk: int | None) -> int | None:
    """A model version's id (a parent, the previously active one), or None where the requesting user
    may not see that version (then it answers like none; with no request nothing is shown). The
    visible ids are read once per request, however many rows of a list name a parent."""
    if pk is None or request is None:
        return None
    visible = getattr(request, "_visible_model_versions", None)
    if visible is None:
        visible = request._visible_model_versions = selectors.model_version_visible_ids(user=request.user)
    return pk if pk in visible else None


class FineTuningJobSerializer(serializers.Serializer):
    def to_representation(self, job: FineTuningJob) -> dict:
        return {
            "object": "fine_tuning.job",
            "id": job.openai_id,
            "uuid": str(job.pk),
            "model": job.base_model_path,
            "created_at": _ts(job.created_at),
            "finished_at": _ts(job.finished_at),
            "fine_tuned_model": job.fine_tuned_model.name if job.fine_tuned_model else None,
            "fine_tuned_model_id": job.fine_tuned_model_id,
            "status": job.status,
            "progress": job.progress,
            "training_file": job.dataset_version_id,
            "validation_fraction": job.validation_fraction,
            "method": {"type": "supervised", "supervised": {"method": job.method, "hyperparameters": job.hyperparameters}},
            "hyperparameters": job.hyperparameters,
            "trained_tokens": job.trained_tokens or None,
            "error": {"message": job.error_message} if job.error_message else None,
            "suffix": job.suffix or None,
            "parent_model_version": _visible_version(self.context.get("request"), job.parent_version_id),
            "teacher": job.teacher or None,
            "seed": job.hyperparameters.get("seed"),
            "metrics": job.metrics,
        }


class FineTuningJobCreateSerializer(serializers.Serializer):
    training_file = serializers.IntegerField(help_text="A dataset version id.")
    method = serializers.ChoiceField(choices=METHODS, default="lora")
    model = serializers.CharField(required=False, allow_blank=True, help_text="A base model directory (default: the configured base).")
    parent_model_version = serializers.IntegerField(required=False, allow_null=True)
    hyperparameters = serializers.DictField(required=False, default=dict)
    suffix = serializers.CharField(required=False, allow_blank=True, max_length=64, default="")
    validation_fraction = serializers.FloatField(required=False, default=0.1)
    auto_evaluate = serializers.BooleanField(required=False, default=True)


class FineTuningJobViewSet(PolicyReadOnlyViewSet):
    policy = fine_tuning_job_policy
    serializer_class = FineTuningJobSerializer
    policy_actions = {"cancel": "change", "resume": "change", "events": "view", "checkpoints": "view"}

    def refine_queryset(self, queryset):
        return queryset.select_related("run_job", "validation_job", "fine_tuned_model")

    def get_object(self):
        pk = self.kwargs["pk"]
        pk = pk.removeprefix("ftjob-") if isinstance(pk, str) else pk
        job = self.policy.instance_for_user(self.request.user, "view", pk)
        self.check_object_permissions(self.request, job)
        return job

    def list(self, request):
        jobs = self.get_queryset()[: _int_param(request, "limit", 20, minimum=1, maximum=100)]
        return Response({"object": "list", "data": [FineTuningJobSerializer(j, context=self.get_serializer_context()).data for j in jobs], "has_more": False})

    @extend_schema(request=FineTuningJobCreateSerializer, responses={201: FineTuningJobSerializer})
    def create(self, request):
        data = FineTuningJobCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        version = dataset_version_policy.instance_for_user(request.user, "view", values["training_file"])
        parent = None
        if values.get("parent_model_version"):
            parent = model_version_policy.instance_for_user(request.user, "view", values["parent_model_version"])
        try:
            job = services.fine_tuning_job_create(
                actor=request.user, dataset_version=version, method=values["method"], base_model_path=values.get("model") or "",
                hyperparameters=values["hyperparameters"], suffix=values["suffix"], validation_fraction=values["validation_fraction"],
                parent_version=parent, auto_evaluate=values["auto_evaluate"],
            )
        except DjangoValidationError as exc:
            raise drf_validation_error(exc) from None
        except DjangoPermissionDenied:
            raise PermissionDenied() from None
        return Response(FineTuningJobSerializer(job, context=self.get_serializer_context()).data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        try:
            job = services.fine_tuning_job_cancel(actor=request.user, job=self.get_object())
        except DjangoValidationError as exc:
            raise drf_validation_error(exc) from None
        return Response(FineTuningJobSerializer(job, context=self.get_serializer_context()).data)

    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        try:
            job = services.fine_tuning_job_resume(actor=request.user, job=self.get_object())
        except DjangoValidationError as exc:
            raise drf_validation_error(exc) from None
        return Response(FineTuningJobSerializer(job, context=self.get_serializer_context()).data)

    @action(detail=True, methods=["get"])
    def events(self, request, pk=None):
        job = self.get_object()
        after = _int_param(request, "after", 0, minimum=0, maximum=2**63 - 1)  # a bigint id
        events = selectors.fine_tuning_event_list(job=job, after=after)
        return Response({"object": "list", "data": [event_json(e) for e in events], "status": job.status,
                         "progress": job.progress, "has_more": False})

    @action(detail=True, methods=["get"])
    def checkpoints(self, request, pk=None):
        job = self.get_object()
        return Response({"object": "list", "data": [checkpoint_json(c) for c in job.checkpoints.all()], "has_more": False})


def event_json(event) -> dict:
    return {"object": "fine_tuning.job.event", "id": event.pk, "created_at": _ts(event.created_at), "level": event.level,
            "message": event.message, "type": event.type, "step": event.step, "data": event.data}


def checkpoint_json(checkpoint) -> dict:
    return {"object": "fine_tuning.job.checkpoint", "id": checkpoint.openai_id, "created_at": _ts(checkpoint.created_at),
            "fine_tuning_job_id": f"ftjob-{checkpoint.job_id.hex}", "step_number": checkpoint.step,
            "fine_tuned_model_checkpoint": checkpoint.path,
            "metrics": {"train_loss": checkpoint.metrics.get("loss"), "valid_loss": checkpoint.metrics.get("eval_loss")}}


class ModelVersionSerializer(serializers.Serializer):
    def to_representation(self, version) -> dict:
        parent = _visible_version(self.context.get("request"), version.parent_id)
        metadata = dict(version.metadata or {})
        if metadata.get("parent") and parent is None:
            metadata["parent"] = None  # its lineage names a version the reader may not see
        return {"object": "model", "id": version.pk, "name": version.name, "kind": version.kind, "method": version.method,
                "base_model_path": version.base_model_path, "adapter_path": version.adapter_path or None,
                "weights_path": version.weights_path or None, "parent": parent,
                "job": version.job.openai_id if version.job else None, "chat_template_sha256": version.chat_template_sha256 or None,
                "created_at": _ts(version.created_at), "metadata": metadata}


class ActivateSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class ModelVersionViewSet(PolicyReadOnlyViewSet):
    policy = model_version_policy
    serializer_class = ModelVersionSerializer
    policy_actions = {"activate": "activate", "restore_previous": "activate", "deactivate": "activate"}

    def refine_queryset(self, queryset):
        return queryset.select_related("job")

    @extend_schema(request=ActivateSerializer)
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        version = self.get_object()
        data = ActivateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            activation = services.model_version_activate(actor=request.user, version=version, reason=data.validated_data["reason"])
        except DjangoPermissionDenied as exc:
            raise PermissionDenied(str(exc) or None) from None
        except DjangoValidationError as exc:
            return Response({"detail": exc.messages[0]}, status=status.HTTP_409_CONFLICT)
        return Response({"active": activation.version_id, "previous": _visible_version(request, activation.previous_id),
                         "gate": services.gate_for(user=request.user, gate=activation.gate)})

    @action(detail=False, methods=["post"])
    def restore_previous(self, request):
        try:
            activation = services.model_version_restore_previous(actor=request.user)
        except DjangoPermissionDenied:
            raise PermissionDenied() from None
        except DjangoValidationError as exc:
            return Response({"detail": exc.messages[0]}, status=status.HTTP_409_CONFLICT)
        return Response({"active": activation.version_id, "previous": _visible_version(request, activation.previous_id)})

    @action(detail=False, methods=["post"])
    def deactivate(self, request):
        try:
            activation = services.model_version_activate(actor=request.user, version=None, action="model_version_deactivate")
        except DjangoPermissionDenied:
            raise PermissionDenied() from None
        return Response({"active": None, "previous": _visible_version(request, activation.previous_id)})


class EvaluationSerializer(serializers.Serializer):
    def to_representation(self, evaluation) -> dict:
        return {"object": "evaluation", "id": evaluation.pk, "model_version": evaluation.model_version_id,
                "dataset_version": evaluation.dataset_version_id, "split": evaluation.split, "status": evaluation.status,
                "options": evaluation.options, "metrics": selectors.evaluation_metrics_shown(evaluation),
                "items": evaluation.items,
                "created_at": _ts(evaluation.created_at)}


class EvaluationCreateSerializer(serializers.Serializer):
    model_version = serializers.IntegerField()
    dataset_version = serializers.IntegerField()
    split = serializers.ChoiceField(choices=["validation", "train", "all"], default="validation")
    seed = serializers.IntegerField(required=False, default=None, allow_null=True, min_value=0, max_value=2**31 - 1,
                                    help_text="Default: the training job's on its own training file, else 42.")
    validation_fraction = serializers.FloatField(required=False, default=None, allow_null=True, min_value=0.01,
                                                 max_value=0.99, help_text="Default: the training job's on its own training file, else 0.1.")
    rag = serializers.BooleanField(required=False, default=False)
    robustness = serializers.BooleanField(required=False, default=True)
    limit = serializers.IntegerField(required=False, default=200, min_value=1, max_value=5000)


class EvaluationViewSet(PolicyReadOnlyViewSet):
    policy = evaluation_policy
    serializer_class = EvaluationSerializer
    # Creating one is authorized by the model version's "evaluate" action inside create().
    policy_actions = {"create": "view"}

    def refine_queryset(self, queryset):
        return self.policy.with_rag_samples_readable(self.request.user, queryset.select_related("job"))

    @extend_schema(request=EvaluationCreateSerializer, responses={201: EvaluationSerializer})
    def create(self, request):
        data = EvaluationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        version = model_version_policy.instance_for_user(request.user, "evaluate", v["model_version"])
        dataset_version = dataset_version_policy.instance_for_user(request.user, "view", v["dataset_version"])
        evaluation = services.evaluation_create(
            actor=request.user, model_version=version, dataset_version=dataset_version, split=v["split"], seed=v["seed"],
            validation_fraction=v["validation_fraction"], options={"rag": v["rag"], "robustness": v["robustness"], "limit": v["limit"]},
        )
        return Response(EvaluationSerializer(evaluation).data, status=status.HTTP_201_CREATED)
