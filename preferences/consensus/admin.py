from django.contrib import admin

from .models import Consensus, ConsensusPolicy, GoldItem, RaterReliability


@admin.register(Consensus)
class ConsensusAdmin(admin.ModelAdmin):
    list_display = ["pair", "facet", "label", "confidence", "method", "flagged"]
    list_filter = ["method", "flagged", "label"]
    raw_id_fields = ["pair"]


admin.site.register([ConsensusPolicy, GoldItem, RaterReliability])
