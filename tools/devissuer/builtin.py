"""Keycloak's built-in OIDC client scopes (as of Keycloak 26), for realm files without any.

Keycloak creates these in every realm imported without `clientScopes`; a realm export that
lists client scopes replaces them entirely, so they are used only in that case.
"""

from __future__ import annotations

from tools.devissuer.model import ClientScope, ProtocolMapper

BUILTIN_DEFAULT_SCOPES = ("acr", "basic", "email", "profile", "roles", "web-origins")
BUILTIN_OPTIONAL_SCOPES = ("address", "microprofile-jwt", "offline_access", "phone")

# Composite roles of the clients Keycloak creates in every realm (client id, role) -> roles.
BUILTIN_CLIENT_ROLE_COMPOSITES = {
    ("account", "manage-account"): frozenset({"manage-account-links"}),
}

_ALL = ("access.token.claim", "id.token.claim", "userinfo.token.claim")
_ACCESS = ("access.token.claim",)


def _mapper(name: str, type_: str, targets: tuple[str, ...], **config: str) -> ProtocolMapper:
    flags = {key: "true" if key in targets else "false" for key in _ALL}
    return ProtocolMapper(
        name, type_, {**flags, **{k.replace("_", "."): v for k, v in config.items()}}
    )


def _property(name: str, attribute: str, claim: str, json_type: str = "String") -> ProtocolMapper:
    return _mapper(
        name,
        "oidc-usermodel-property-mapper",
        _ALL,
        user_attribute=attribute,
        claim_name=claim,
        jsonType_label=json_type,
    )


def _note(name: str, note: str, claim: str, json_type: str = "String") -> ProtocolMapper:
    return _mapper(
        name,
        "oidc-usersessionmodel-note-mapper",
        ("access.token.claim", "id.token.claim"),
        user_session_note=note,
        claim_name=claim,
        jsonType_label=json_type,
    )


def builtin_scopes() -> list[ClientScope]:
    """Return the built-in client scopes with the mappers the issuer emulates."""
    return [
        ClientScope(
            "acr",
            include_in_token_scope=False,
            mappers=(_mapper("acr loa level", "oidc-acr-mapper", (*_ACCESS, "id.token.claim")),),
        ),
        ClientScope(
            "basic",
            include_in_token_scope=False,
            mappers=(
                _mapper("sub", "oidc-sub-mapper", _ACCESS),
                _note("auth_time", "AUTH_TIME", "auth_time", "long"),
            ),
        ),
        ClientScope(
            "email",
            mappers=(
                _property("email", "email", "email"),
                _property("email verified", "emailVerified", "email_verified", "boolean"),
            ),
        ),
        ClientScope(
            "profile",
            mappers=(
                _property("username", "username", "preferred_username"),
                _mapper("full name", "oidc-full-name-mapper", _ALL),
                _property("given name", "firstName", "given_name"),
                _property("family name", "lastName", "family_name"),
            ),
        ),
        ClientScope(
            "roles",
            include_in_token_scope=False,
            mappers=(
                _mapper(
                    "realm roles",
                    "oidc-usermodel-realm-role-mapper",
                    _ACCESS,
                    claim_name="realm_access.roles",
                    multivalued="true",
                ),
                _mapper(
                    "client roles",
                    "oidc-usermodel-client-role-mapper",
                    _ACCESS,
                    claim_name="resource_access.${client_id}.roles",
                    multivalued="true",
                ),
                _mapper("audience resolve", "oidc-audience-resolve-mapper", _ACCESS),
            ),
        ),
        ClientScope(
            "web-origins",
            include_in_token_scope=False,
            mappers=(_mapper("allowed web origins", "oidc-allowed-origins-mapper", _ACCESS),),
        ),
        ClientScope("offline_access"),
        ClientScope("address"),
        ClientScope("phone"),
        ClientScope(
            "microprofile-jwt",
            mappers=(
                _property("upn", "username", "upn"),
                _mapper(
                    "groups",
                    "oidc-usermodel-realm-role-mapper",
                    _ALL,
                    claim_name="groups",
                    multivalued="true",
                ),
            ),
        ),
        ClientScope(
            "service_account",
            include_in_token_scope=False,
            mappers=(
                _note("Client ID", "client_id", "client_id"),
                _note("Client Host", "clientHost", "clientHost"),
                _note("Client IP Address", "clientAddress", "clientAddress"),
            ),
        ),
    ]
