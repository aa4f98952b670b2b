"""Instance entities (`/api/v1/instance`, `/api/v2/instance`) for the simulator.

Shapes follow Mastodon's REST::V1::InstanceSerializer and REST::InstanceSerializer (4.5):
`configuration.urls.streaming` and `configuration.timelines_access.hashtag_feeds`
(`"public"` or `"authenticated"`) are what a client looks at.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aggregator.sim.mastodon import ServerSettings

_MIME = ["image/jpeg", "image/png", "image/gif", "image/webp", "video/mp4", "audio/mpeg"]


def _access(settings: ServerSettings) -> str:
    return "authenticated" if settings.require_token else "public"


def instance_v2(settings: ServerSettings, request_host: str) -> dict[str, Any]:
    host = settings.host
    access = _access(settings)
    return {
        "domain": host,
        "title": settings.title or host,
        "version": settings.version,
        "source_url": "https://github.com/mastodon/mastodon",
        "description": f"A simulated Mastodon server ({host}) for backchannel tests and demos.",
        "usage": {"users": {"active_month": 1234}},
        "thumbnail": {"url": f"https://{host}/packs/media/images/preview.png"},
        "icon": [],
        "languages": ["en"],
        "configuration": {
            "urls": {
                "streaming": f"ws://{request_host}" if settings.streaming else None,
                "status": None,
                "about": f"https://{host}/about",
                "privacy_policy": f"https://{host}/privacy-policy",
                "terms_of_service": None,
            },
            "vapid": {"public_key": ""},
            "accounts": {"max_featured_tags": 10, "max_pinned_statuses": 5},
            "statuses": {
                "max_characters": 500,
                "max_media_attachments": 4,
                "characters_reserved_per_url": 23,
            },
            "media_attachments": {
                "supported_mime_types": _MIME,
                "description_limit": 1500,
                "image_size_limit": 16777216,
                "image_matrix_limit": 33177600,
                "video_size_limit": 103809024,
                "video_frame_rate_limit": 120,
                "video_matrix_limit": 8294400,
            },
            "polls": {
                "max_options": 4,
                "max_characters_per_option": 50,
                "min_expiration": 300,
                "max_expiration": 2629746,
            },
            "translation": {"enabled": False},
            "timelines_access": {
                "live_feeds": {"local": access, "remote": access},
                "hashtag_feeds": {"local": access, "remote": access},
                "trending_link_feeds": {"local": access, "remote": access},
            },
            "limited_federation": False,
        },
        "registrations": {
            "enabled": False,
            "approval_required": False,
            "reason_required": False,
            "message": None,
            "min_age": None,
            "url": None,
        },
        "api_versions": {"mastodon": 7},
        "contact": {"email": f"admin@{host}", "account": None},
        "rules": [],
    }


def instance_v1(settings: ServerSettings, request_host: str, statuses: int) -> dict[str, Any]:
    host = settings.host
    v2 = instance_v2(settings, request_host)
    return {
        "uri": host,
        "title": v2["title"],
        "short_description": v2["description"],
        "description": v2["description"],
        "email": f"admin@{host}",
        "version": settings.version,
        "urls": {"streaming_api": f"ws://{request_host}"} if settings.streaming else {},
        "stats": {"user_count": 1234, "status_count": statuses, "domain_count": 5},
        "thumbnail": v2["thumbnail"]["url"],
        "languages": ["en"],
        "registrations": False,
        "approval_required": False,
        "invites_enabled": False,
        "configuration": {
            "accounts": {"max_featured_tags": 10},
            "statuses": v2["configuration"]["statuses"],
            "media_attachments": v2["configuration"]["media_attachments"],
            "polls": v2["configuration"]["polls"],
        },
        "contact_account": None,
        "rules": [],
    }
