from __future__ import annotations

from django import forms

from vetline.connectors.actions import MAX_APP_PASSWORD_CHARS


class AppPasswordForm(forms.Form):
    """Signing an account in with an app password (Bluesky). The password is exchanged at once
    for tokens and never stored; the field is never rendered back."""

    identifier = forms.CharField(
        max_length=MAX_APP_PASSWORD_CHARS,
        label="Handle or e-mail",
        help_text="The account's handle on the network, e.g. acme.bsky.social.",
    )
    app_password = forms.CharField(
        max_length=MAX_APP_PASSWORD_CHARS,
        label="App password",
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=(
            "Create one in the network's settings (on Bluesky: Settings, Privacy and security, "
            "App passwords). Never your main password."
        ),
    )
