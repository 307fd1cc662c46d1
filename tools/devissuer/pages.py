"""The few HTML pages of the dev issuer: the login form and messages. Every value that
reaches the HTML is escaped; the pages load nothing and may not be framed."""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse

from tools.devissuer.model import Client, Realm

_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
_STYLE = (
    "body{font-family:system-ui,sans-serif;background:#f4f6f8;margin:0}"
    "main{max-width:22rem;margin:10vh auto;background:#fff;padding:2rem;border-radius:8px;"
    "box-shadow:0 1px 4px #0002}h1{font-size:1.3rem;margin-top:0}"
    "label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.5rem;box-sizing:border-box}"
    "button{margin-top:1.2rem;width:100%;padding:.6rem;font-size:1rem}"
    ".error{color:#b00020}.note{color:#666;font-size:.85rem}"
)


def _page(status: int, title: str, body: str) -> HTMLResponse:
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def message_page(status: int, message: str) -> HTMLResponse:
    """A page with one message (errors before the client can be told, logout)."""
    title = "Huimin sign-in" if status < 400 else "We are sorry..."
    return _page(status, title, f"<h1>{escape(title)}</h1><p>{escape(message)}</p>")


def login_page(
    realm: Realm, client: Client, action: str, *, error: str | None = None, username: str = ""
) -> HTMLResponse:
    """The username/password form posting to `action`."""
    problem = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    body = (
        f"<h1>Sign in to {escape(realm.display_name)}</h1>{problem}"
        f'<form method="post" action="{escape(action)}">'
        '<label for="username">Username or email</label>'
        f'<input id="username" name="username" value="{escape(username)}" '
        'autocomplete="username" autofocus required>'
        '<label for="password">Password</label>'
        '<input id="password" name="password" type="password" '
        'autocomplete="current-password" required>'
        '<button type="submit">Sign in</button></form>'
        f'<p class="note">Embedded development issuer, not Keycloak; signing in to '
        f"{escape(client.client_id)}.</p>"
    )
    return _page(200, f"Sign in to {realm.display_name}", body)
