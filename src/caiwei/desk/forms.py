from django import forms

from caiwei.regions.models import Region
from caiwei.regions.scoping import visible_regions

from .models import Ticket


class TicketForm(forms.ModelForm):
    class Meta:
        model = Ticket
        fields = [
            "region",
            "channel",
            "system",
            "module",
            "ticket_type",
            "severity",
            "title",
            "description",
            "requester_kind",
            "requester_name",
            "requester_org",
            "requester_phone",
        ]
        widgets = {"description": forms.Textarea(attrs={"rows": 5})}

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"].queryset = visible_regions(user) if user is not None else Region.objects.none()
        for field in self.fields.values():
            widget = field.widget
            widget.attrs["class"] = (
                "form-select form-select-sm"
                if isinstance(widget, forms.Select)
                else ("form-control form-control-sm")
            )
