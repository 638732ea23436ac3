"""Vocabulary of the customer graph, stored as plain strings (no database enum types)."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    POS = "POS"
    WEB = "WEB"
    MOBILE_APP = "MOBILE_APP"
    CONTACT_CENTER = "CONTACT_CENTER"


class CustomerStatus(StrEnum):
    ACTIVE = "ACTIVE"
    MERGED = "MERGED"
    ERASED = "ERASED"


class IdentityKind(StrEnum):
    PHONE = "PHONE"
    EMAIL = "EMAIL"
    LOYALTY_CARD = "LOYALTY_CARD"
    EXTERNAL_ID = "EXTERNAL_ID"
    DEVICE_ID = "DEVICE_ID"


class EventType(StrEnum):
    PURCHASE = "PURCHASE"
    RETURN = "RETURN"
    VISIT = "VISIT"
    CONTACT = "CONTACT"
    CAMPAIGN_RESPONSE = "CAMPAIGN_RESPONSE"


class CampaignAction(StrEnum):
    DELIVERED = "DELIVERED"
    OPENED = "OPENED"
    CLICKED = "CLICKED"
    CONVERTED = "CONVERTED"
    UNSUBSCRIBED = "UNSUBSCRIBED"


class ReferralStatus(StrEnum):
    INVITED = "INVITED"
    REGISTERED = "REGISTERED"
    CONVERTED = "CONVERTED"


class SocialPlatform(StrEnum):
    VK = "VK"
    TELEGRAM = "TELEGRAM"
    INSTAGRAM = "INSTAGRAM"
    YOUTUBE = "YOUTUBE"
    TIKTOK = "TIKTOK"
    OTHER = "OTHER"
