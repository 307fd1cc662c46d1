"""Controlled vocabularies of the tourism service, with Chinese and English labels."""

from __future__ import annotations

from collections.abc import Mapping

Labels = Mapping[str, tuple[str, str]]  # code -> (zh, en)

# schema.org types a place may have.
PLACE_TYPES: Labels = {
    "TouristAttraction": ("景点", "Tourist attraction"),
    "TouristDestination": ("旅游目的地", "Tourist destination"),
    "LodgingBusiness": ("住宿", "Lodging"),
    "Restaurant": ("餐厅", "Restaurant"),
}

# Category -> (zh, en, the place types it fits).
CATEGORIES: Mapping[str, tuple[str, str, frozenset[str]]] = {
    "museum": ("博物馆", "Museum", frozenset({"TouristAttraction"})),
    "historic-site": ("历史古迹", "Historic site", frozenset({"TouristAttraction"})),
    "temple": ("寺庙", "Temple", frozenset({"TouristAttraction"})),
    "park": ("公园", "Park", frozenset({"TouristAttraction", "TouristDestination"})),
    "landmark": ("地标", "Landmark", frozenset({"TouristAttraction"})),
    "nature": ("自然风光", "Nature", frozenset({"TouristAttraction", "TouristDestination"})),
    "theatre": ("剧院", "Theatre", frozenset({"TouristAttraction"})),
    "shopping": ("购物", "Shopping", frozenset({"TouristAttraction", "TouristDestination"})),
    "zoo": ("动物园", "Zoo", frozenset({"TouristAttraction"})),
    "district": ("街区", "District", frozenset({"TouristDestination"})),
    "scenic-area": ("风景区", "Scenic area", frozenset({"TouristDestination"})),
    "hotel": ("酒店", "Hotel", frozenset({"LodgingBusiness"})),
    "hostel": ("青年旅舍", "Hostel", frozenset({"LodgingBusiness"})),
    "guesthouse": ("民宿", "Guesthouse", frozenset({"LodgingBusiness"})),
    "chinese-cuisine": ("中餐", "Chinese cuisine", frozenset({"Restaurant"})),
    "snack": ("小吃", "Snacks", frozenset({"Restaurant"})),
    "cafe": ("咖啡馆", "Café", frozenset({"Restaurant"})),
    "vegetarian": ("素食", "Vegetarian", frozenset({"Restaurant"})),
}

# schema.org `amenityFeature` names for access needs.
ACCESSIBILITY_FEATURES: Labels = {
    "step-free-entrance": ("无障碍入口", "Step-free entrance"),
    "accessible-toilet": ("无障碍卫生间", "Accessible toilet"),
    "elevator": ("电梯", "Elevator"),
    "wheelchair-rental": ("轮椅租借", "Wheelchair rental"),
    "accessible-parking": ("无障碍停车位", "Accessible parking"),
    "braille": ("盲文标识", "Braille signage"),
    "audio-guide": ("语音导览", "Audio guide"),
    "sign-language": ("手语服务", "Sign language"),
    "guide-dogs-welcome": ("允许导盲犬", "Guide dogs welcome"),
}
