"""REST API for blending: agreement per facet and rater, and the consensus labels."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.models import Role
from annotate.selectors import project_for_api

from .models import Consensus
from .selectors import agreement_by_facet, consensus_list, rater_reliability_list


class AgreementApi(APIView):
    class FacetOutput(serializers.Serializer):
        facet = serializers.CharField()
        human_items = serializers.IntegerField()
        percent = serializers.FloatField(allow_null=True)
        compared = serializers.IntegerField()
        alpha = serializers.FloatField(allow_null=True)
        kappa = serializers.FloatField(allow_null=True)
        kappa_items = serializers.IntegerField()
        llm_agrees = serializers.FloatField(allow_null=True)
        consensus = serializers.IntegerField()
        flagged = serializers.IntegerField()

    class RaterOutput(serializers.Serializer):
        kind = serializers.CharField()
        name = serializers.CharField()
        judgements = serializers.IntegerField()
        consensus_agreement = serializers.FloatField(allow_null=True)
        ds_accuracy = serializers.FloatField(allow_null=True)
        gold_answers = serializers.IntegerField()
        gold_accuracy = serializers.FloatField(allow_null=True)

    @extend_schema(
        tags=["consensus"],
        responses=inline_serializer(
            "Agreement",
            {"facets": FacetOutput(many=True), "raters": RaterOutput(many=True)},
        ),
    )
    def get(self, request, project_id: int):
        project = project_for_api(user=request.user, project_id=project_id, min_role=Role.REVIEWER)
        facets = [
            {k: v for k, v in row.items() if k != "facet"} | {"facet": row["facet"].key}
            for row in agreement_by_facet(project=project)
        ]
        return Response({"facets": facets, "raters": rater_reliability_list(project=project)})


class ConsensusLabelOutput(serializers.ModelSerializer):
    facet = serializers.CharField(source="facet.key")

    class Meta:
        model = Consensus
        fields = [
            "pair", "facet", "label", "confidence", "method", "weights", "scores", "counts",
            "n_judgements", "human_agreement", "flagged", "updated_at",
        ]  # fmt: skip


class ConsensusFilter(serializers.Serializer):
    flagged = serializers.BooleanField(required=False, default=False)
    facet = serializers.SlugField(required=False, max_length=32)


@extend_schema(tags=["consensus"], parameters=[ConsensusFilter])
class ConsensusListApi(generics.ListAPIView):
    serializer_class = ConsensusLabelOutput

    def get_queryset(self):
        project = project_for_api(
            user=self.request.user, project_id=self.kwargs["project_id"], min_role=Role.REVIEWER
        )
        f = ConsensusFilter(data=self.request.query_params)
        f.is_valid(raise_exception=True)
        return consensus_list(
            project=project,
            flagged_only=f.validated_data["flagged"],
            facet_key=f.validated_data.get("facet"),
        )
