from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from accounts.viewsets import PolicyReadOnlyViewSet

from . import services
from .policy import job_policy
from .serializers import JobCreateSerializer, JobSerializer


class JobViewSet(PolicyReadOnlyViewSet):
    """Background jobs: status and progress as the database records them."""

    policy = job_policy
    serializer_class = JobSerializer

    @extend_schema(request=JobCreateSerializer, responses={201: JobSerializer})
    def create(self, request):
        serializer = JobCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = services.job_create(actor=request.user, **serializer.validated_data)
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)
