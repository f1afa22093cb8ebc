from django import forms
from django.core.exceptions import ValidationError

from caiwei.regions.models import Region
from caiwei.regions.scoping import visible_regions

from .models import HotlineCall, Ticket


class RegionScopedForm(forms.ModelForm):
    """A form whose region choices are the user's regions, styled for the pages."""

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"].queryset = visible_regions(user) if user is not None else Region.objects.none()
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.CheckboxInput):
                widget.attrs["class"] = "form-check-input"
            elif isinstance(widget, forms.Select):
                widget.attrs["class"] = "form-select form-select-sm"
            else:
                widget.attrs["class"] = "form-control form-control-sm"


class TicketForm(RegionScopedForm):
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


class CallForm(RegionScopedForm):
    ticket_number = forms.CharField(label="关联工单号", required=False, help_text="来电询问已有工单时填写")

    class Meta:
        model = HotlineCall
        fields = ["region", "at", "answered", "caller_number", "caller_name", "caller_org", "summary"]
        widgets = {"at": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")}

    def clean_at(self):
        from .services import check_call_time

        at = self.cleaned_data.get("at")
        if at is not None:
            try:
                check_call_time(at)
            except ValidationError as exc:
                raise ValidationError(exc.message_dict["at"]) from exc
        return at
