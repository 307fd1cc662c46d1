"""Controlled vocabularies of the catalogue's facets, with Chinese and English labels.

Facets are counted per value with one indexed `count()` each, so every facetable field takes
its values from a known list (schema.org lets these be `DefinedTerm`s): a search can then
report every value's count, including zeros, without reading a single document.
"""

from __future__ import annotations

from collections.abc import Mapping

Labels = Mapping[str, tuple[str, str]]  # code -> (zh, en)

SUBJECTS: Labels = {
    "chinese": ("语文", "Chinese language"),
    "mathematics": ("数学", "Mathematics"),
    "english": ("英语", "English language"),
    "science": ("科学", "Science"),
    "physics": ("物理", "Physics"),
    "chemistry": ("化学", "Chemistry"),
    "biology": ("生物", "Biology"),
    "history": ("历史", "History"),
    "geography": ("地理", "Geography"),
    "civics": ("道德与法治", "Civics"),
    "arts": ("美术", "Arts"),
    "music": ("音乐", "Music"),
    "physical-education": ("体育", "Physical education"),
    "information-technology": ("信息技术", "Information technology"),
    "health": ("健康", "Health"),
    "life-skills": ("生活技能", "Life skills"),
    "vocational": ("职业技能", "Vocational skills"),
}

LEVELS: Labels = {
    "early-childhood": ("学前", "Early childhood"),
    "primary": ("小学", "Primary"),
    "lower-secondary": ("初中", "Lower secondary"),
    "upper-secondary": ("高中", "Upper secondary"),
    "vocational": ("职业教育", "Vocational"),
    "higher": ("高等教育", "Higher education"),
    "adult": ("成人教育", "Adult and continuing"),
    "senior": ("老年教育", "Senior learners"),
}

TYPES: Labels = {
    "video": ("视频", "Video"),
    "audio": ("音频", "Audio"),
    "text": ("文本", "Text"),
    "ebook": ("电子书", "E-book"),
    "exercise": ("练习", "Exercise"),
    "assessment": ("测验", "Assessment"),
    "interactive": ("互动", "Interactive"),
    "lesson-plan": ("教案", "Lesson plan"),
    "course": ("课程", "Course"),
    "image": ("图片", "Image"),
    "simulation": ("仿真", "Simulation"),
}

LANGUAGES: Labels = {
    "zh": ("中文", "Chinese"),
    "zh-Hant": ("繁体中文", "Chinese (traditional)"),
    "en": ("英文", "English"),
    "bo": ("藏文", "Tibetan"),
    "ug": ("维吾尔文", "Uyghur"),
    "mn": ("蒙古文", "Mongolian"),
}

LICENSES: Labels = {
    "CC0-1.0": ("公共领域贡献", "CC0 1.0"),
    "CC-BY-4.0": ("署名 4.0", "CC BY 4.0"),
    "CC-BY-SA-4.0": ("署名-相同方式共享 4.0", "CC BY-SA 4.0"),
    "CC-BY-NC-4.0": ("署名-非商业性使用 4.0", "CC BY-NC 4.0"),
    "CC-BY-NC-SA-4.0": ("署名-非商业性使用-相同方式共享 4.0", "CC BY-NC-SA 4.0"),
    "CC-BY-ND-4.0": ("署名-禁止演绎 4.0", "CC BY-ND 4.0"),
    "public-domain": ("公有领域", "Public domain"),
    "all-rights-reserved": ("保留所有权利", "All rights reserved"),
}

# Facet name (query parameter) -> (index key, vocabulary).
FACETS: Mapping[str, tuple[str, Labels]] = {
    "subject": ("subject", SUBJECTS),
    "level": ("level", LEVELS),
    "type": ("type", TYPES),
    "language": ("language", LANGUAGES),
    "license": ("license", LICENSES),
}

ACCESSIBILITY_FEATURES = frozenset(
    {
        "alternativeText",
        "audioDescription",
        "captions",
        "transcript",
        "signLanguage",
        "largePrint",
        "highContrastDisplay",
        "structuralNavigation",
        "readingOrder",
        "tableOfContents",
        "displayTransformability",
        "ttsMarkup",
        "braille",
        "none",
    }
)
