"""What the education benchmark's catalogue is made of: topics per subject in Chinese and
English (most frequent first), the frequencies of subjects, levels, types and licenses, and
the templates of names and descriptions. The generator is bench/education_data.py.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from services.education.vocab import LEVELS, SUBJECTS, TYPES

# Topics per subject, most frequent first: "中文:english_words" (underscores are spaces).
_TOPIC_TEXT = {
    "mathematics": """函数:functions 方程:equations 分数:fractions 几何:geometry
    三角形:triangles 小数:decimals 乘法:multiplication 除法:division
    一元一次方程:linear_equations 概率:probability 二次函数:quadratic_functions 统计:statistics
    加法:addition 减法:subtraction 面积:area 勾股定理:Pythagorean_theorem 百分数:percentages
    因式分解:factorization 不等式:inequalities 数列:sequences 圆:circles 周长:perimeter
    体积:volume 比例:ratios 角:angles 平面直角坐标系:coordinate_plane 平行四边形:parallelograms
    负数:negative_numbers 有理数:rational_numbers 实数:real_numbers 对数:logarithms
    指数:exponents 向量:vectors 导数:derivatives 积分:integrals 集合:sets 排列组合:permutations
    三角函数:trigonometry 立体几何:solid_geometry 解析几何:analytic_geometry 矩阵:matrices
    复数:complex_numbers 数学归纳法:mathematical_induction 相似三角形:similar_triangles
    全等三角形:congruent_triangles 轴对称:symmetry 鸡兔同笼:chickens_and_rabbits
    口算:mental_arithmetic 乘法口诀:times_tables 认识钟表:telling_time 认识人民币:counting_money
    统计图:bar_charts 圆锥曲线:conic_sections 椭圆:ellipses 双曲线:hyperbolas 抛物线:parabolas
    数轴:number_lines 方差:variance 植树问题:fencepost_problems""",
    "chinese": """古诗:classical_poems 阅读:reading 作文:composition 拼音:pinyin
    识字:character_learning 文言文:classical_Chinese 成语:idioms 唐诗:Tang_poetry
    汉字:Chinese_characters 宋词:Song_lyrics 写字:handwriting 朗读:reading_aloud 修辞:rhetoric
    记叙文:narrative_writing 议论文:argumentative_essays 说明文:expository_writing 散文:prose
    童话:fairy_tales 寓言:fables 论语:the_Analects 西游记:Journey_to_the_West
    红楼梦:Dream_of_the_Red_Chamber 三国演义:Romance_of_the_Three_Kingdoms 水浒传:Water_Margin
    鲁迅:Lu_Xun 李白:Li_Bai 杜甫:Du_Fu 苏轼:Su_Shi 病句:sentence_correction 标点符号:punctuation
    近义词:synonyms 反义词:antonyms 看图写话:picture_writing 名著导读:classic_novels
    书法:calligraphy 对联:couplets 口语交际:oral_communication 偏旁部首:character_components
    日记:diary_writing 诗经:Book_of_Songs 楚辞:Songs_of_Chu 现代诗:modern_poetry 戏剧:drama
    新闻写作:news_writing 演讲稿:speech_writing 小说:fiction 儿歌:nursery_rhymes
    歇后语:two-part_allegorical_sayings""",
    "english": """语法:grammar 单词:vocabulary 听力:listening 口语:speaking
    阅读理解:reading_comprehension 写作:writing 音标:phonetics 时态:tenses 自然拼读:phonics
    一般现在时:present_simple 过去时:past_tense 现在完成时:present_perfect
    被动语态:passive_voice 定语从句:relative_clauses 情态动词:modal_verbs 介词:prepositions
    冠词:articles 名词复数:plural_nouns 形容词:adjectives 副词:adverbs 代词:pronouns
    字母:the_alphabet 日常对话:everyday_conversation 完形填空:cloze_tests 短语动词:phrasal_verbs
    发音:pronunciation 绘本:picture_books 英文歌曲:English_songs 旅游英语:travel_English
    商务英语:business_English 书信:letter_writing 词根:word_roots 连词:conjunctions
    虚拟语气:subjunctive_mood 非谓语动词:non-finite_verbs 主谓一致:subject-verb_agreement
    演讲:public_speaking""",
    "science": """天气:weather 水循环:water_cycle 太阳系:solar_system 月相:phases_of_the_moon
    岩石:rocks 土壤:soil 磁铁:magnets 简单电路:simple_circuits 植物生长:plant_growth
    动物的家:animal_habitats 物质的状态:states_of_matter 声音:sound 光与影:light_and_shadow
    地球:the_Earth 科学探究:scientific_inquiry 测量:measurement 材料:materials
    能源:energy_sources 环境保护:environmental_protection 宇宙:the_universe 火山:volcanoes
    地震:earthquakes 恐龙:dinosaurs 四季:seasons 空气:air 光合作用:photosynthesis""",
    "physics": """力:force 运动:motion 电路:electric_circuits 光:light 电流:electric_current
    压强:pressure 浮力:buoyancy 牛顿定律:Newton's_laws 能量:energy 电压:voltage 功率:power
    机械能:mechanical_energy 热:heat 温度:temperature 透镜:lenses 光的折射:refraction
    光的反射:reflection 磁场:magnetic_fields 电磁感应:electromagnetic_induction
    欧姆定律:Ohm's_law 速度:velocity 加速度:acceleration 摩擦力:friction 重力:gravity
    杠杆:levers 滑轮:pulleys 密度:density 动量:momentum 万有引力:universal_gravitation
    圆周运动:circular_motion 机械波:mechanical_waves 光电效应:photoelectric_effect 光子:photons
    原子核:atomic_nuclei 相对论:relativity 热力学:thermodynamics 电容:capacitors
    交流电:alternating_current 物态变化:changes_of_state""",
    "chemistry": """化学反应:chemical_reactions 元素:elements 元素周期表:periodic_table
    分子:molecules 原子:atoms 酸碱:acids_and_bases 离子:ions 氧化还原:redox_reactions
    溶液:solutions 化学方程式:chemical_equations 金属:metals 有机化学:organic_chemistry
    化学键:chemical_bonds 物质的量:the_mole 燃烧:combustion 氧气:oxygen 二氧化碳:carbon_dioxide
    盐:salts 催化剂:catalysts 化学平衡:chemical_equilibrium 电解:electrolysis
    原电池:galvanic_cells 烃:hydrocarbons 高分子:polymers 实验安全:lab_safety
    质量守恒:conservation_of_mass 化合价:valence 溶解度:solubility 晶体:crystals""",
    "biology": """光合作用:photosynthesis 细胞:cells 遗传:heredity 生态系统:ecosystems
    呼吸作用:cellular_respiration 人体:the_human_body 植物:plants 动物:animals 进化:evolution
    基因:genes 微生物:microorganisms 细菌:bacteria 病毒:viruses 消化系统:digestive_system
    血液循环:blood_circulation 神经系统:nervous_system 免疫:immunity 种子:seeds
    显微镜:microscopes 酶:enzymes 减数分裂:meiosis 有丝分裂:mitosis 生物多样性:biodiversity
    食物链:food_chains 光合色素:photosynthetic_pigments 激素:hormones 蛋白质:proteins
    生殖:reproduction 昆虫:insects 鸟类:birds 生物技术:biotechnology""",
    "history": """唐朝:Tang_dynasty 秦朝:Qin_dynasty 汉朝:Han_dynasty 宋朝:Song_dynasty
    明朝:Ming_dynasty 清朝:Qing_dynasty 丝绸之路:the_Silk_Road 四大发明:four_great_inventions
    辛亥革命:Xinhai_Revolution 五四运动:May_Fourth_Movement 抗日战争:War_of_Resistance
    改革开放:reform_and_opening-up 古希腊:ancient_Greece 古罗马:ancient_Rome
    文艺复兴:the_Renaissance 工业革命:Industrial_Revolution 第一次世界大战:First_World_War
    第二次世界大战:Second_World_War 冷战:the_Cold_War 春秋战国:Spring_and_Autumn_period
    三国:Three_Kingdoms 郑和下西洋:voyages_of_Zheng_He 长城:the_Great_Wall
    故宫:the_Forbidden_City 北京史:history_of_Beijing 考古:archaeology""",
    "geography": """地图:maps 气候:climate 地形:landforms 河流:rivers 人口:population
    城市:cities 经纬度:latitude_and_longitude 中国地理:geography_of_China
    世界地理:world_geography 板块构造:plate_tectonics 季风:monsoons 自然资源:natural_resources
    农业:agriculture 交通:transport 长江:the_Yangtze 黄河:the_Yellow_River
    青藏高原:Tibetan_Plateau 海洋:oceans 大气:atmosphere 等高线:contour_lines 时区:time_zones
    可持续发展:sustainable_development 荒漠化:desertification""",
    "civics": """法律:law 宪法:the_Constitution 权利:rights 义务:duties 诚信:honesty
    安全教育:safety_education 交通安全:road_safety 网络安全:online_safety
    防范诈骗:fraud_prevention 消费者权益:consumer_rights 垃圾分类:waste_sorting 家庭:family
    社区:community 志愿服务:volunteering 民族团结:ethnic_unity 未成年人保护:child_protection
    生命教育:life_education 情绪管理:managing_emotions 规则:rules 友善:kindness""",
    "arts": """素描:sketching 水彩:watercolour 国画:Chinese_painting 色彩:colour
    剪纸:paper_cutting 手工:crafts 书法:calligraphy 摄影:photography 雕塑:sculpture 设计:design
    美术欣赏:art_appreciation 漫画:comics 折纸:origami 版画:printmaking 陶艺:pottery
    油画:oil_painting""",
    "music": """唱歌:singing 乐理:music_theory 节奏:rhythm 钢琴:piano 古筝:guzheng 合唱:choir
    二胡:erhu 音乐欣赏:music_appreciation 民歌:folk_songs 京剧:Peking_opera 识谱:reading_music
    打击乐:percussion 小提琴:violin 吉他:guitar 戏曲:Chinese_opera""",
    "physical-education": """跳绳:rope_skipping 足球:football 篮球:basketball
    乒乓球:table_tennis 排球:volleyball 羽毛球:badminton 跑步:running 游泳:swimming
    广播体操:morning_exercises 太极拳:tai_chi 武术:martial_arts 体能:fitness 田径:athletics
    跳远:long_jump""",
    "information-technology": """编程:programming 智能手机:smartphones
    人工智能:artificial_intelligence 算法:algorithms Python:Python Scratch:Scratch 网络:networks
    数据:data 办公软件:office_software 电子表格:spreadsheets 文字处理:word_processing
    信息安全:information_security 机器人:robotics 数据库:databases 图像处理:photo_editing
    微信:WeChat 移动支付:mobile_payment 网上挂号:online_appointments 视频通话:video_calls
    3D打印:3D_printing 物联网:Internet_of_Things""",
    "health": """急救:first_aid 营养:nutrition 心理健康:mental_health 睡眠:sleep
    近视防控:myopia_prevention 传染病预防:infectious_disease_prevention 高血压:hypertension
    糖尿病:diabetes 健康饮食:healthy_eating 慢性病:chronic_diseases 口腔卫生:oral_hygiene
    心肺复苏:CPR 用药安全:medication_safety 运动健康:exercise_and_health 青春期:puberty
    老年保健:health_in_old_age 戒烟:quitting_smoking""",
    "life-skills": """烹饪:cooking 理财:personal_finance 家务:housework 消防安全:fire_safety
    手机支付:paying_by_phone 防诈骗:scam_awareness 园艺:gardening 育儿:parenting
    养老:elderly_care 求职:job_hunting 时间管理:time_management 沟通:communication
    垃圾分类:waste_sorting""",
    "vocational": """电工:electrician_skills 护理:nursing 会计:accounting 焊接:welding
    汽车维修:car_repair 电子商务:e-commerce 烹饪技术:culinary_skills 物流:logistics
    家政服务:domestic_services 美容美发:hairdressing 导游:tour_guiding
    直播带货:livestream_selling 数控:CNC_machining 育婴师:childcare_work
    养老护理:elder_care_work""",
}


def _parse_topics(text: str) -> list[tuple[str, str]]:
    pairs = " ".join(text.split()).replace(": ", ":").split()
    return [(zh, en.replace("_", " ")) for zh, en in (p.split(":", 1) for p in pairs)]


TOPICS = {subject: _parse_topics(text) for subject, text in _TOPIC_TEXT.items()}
ZIPF = 1.1  # topic weights fall off as 1 / rank^ZIPF


def cumulative(weights: Sequence[float]) -> list[float]:
    return list(itertools.accumulate(weights))


def zipf(n: int, exponent: float = ZIPF) -> list[float]:
    return cumulative([1 / (rank + 1) ** exponent for rank in range(n)])


TOPIC_CUM = {subject: zipf(len(topics)) for subject, topics in TOPICS.items()}
# Relative frequencies in a city's catalogue: school subjects lead.
SUBJECT_WEIGHTS = {
    "mathematics": 18,
    "chinese": 16,
    "english": 12,
    "science": 5,
    "physics": 6,
    "chemistry": 5,
    "biology": 6,
    "history": 5,
    "geography": 4,
    "civics": 4,
    "arts": 3,
    "music": 3,
    "physical-education": 2,
    "information-technology": 5,
    "health": 3,
    "life-skills": 2,
    "vocational": 2,
}
_SCHOOL = {"primary": 35, "lower-secondary": 30, "upper-secondary": 25, "adult": 3}
_SECONDARY = {"lower-secondary": 45, "upper-secondary": 45, "higher": 4, "adult": 3}
_ADULT = {"adult": 50, "senior": 35, "vocational": 8}
# Levels and subjects with a national curriculum standard to align to.
CURRICULUM_LEVELS = frozenset({"primary", "lower-secondary", "upper-secondary"})
NO_CURRICULUM = frozenset({"health", "life-skills", "vocational"})
LEVEL_WEIGHTS: dict[str, dict[str, int]] = {
    "mathematics": {**_SCHOOL, "higher": 3},
    "chinese": {"early-childhood": 8, **_SCHOOL},
    "english": {"early-childhood": 4, **_SCHOOL, "adult": 10, "higher": 3},
    "science": {"early-childhood": 6, "primary": 60, "lower-secondary": 30},
    "physics": _SECONDARY,
    "chemistry": _SECONDARY,
    "biology": _SECONDARY,
    "history": {**_SCHOOL, "senior": 4},
    "geography": _SCHOOL,
    "civics": {**_SCHOOL, "adult": 15, "senior": 10},
    "arts": {
        "early-childhood": 10,
        "primary": 40,
        "lower-secondary": 20,
        "adult": 10,
        "senior": 15,
    },
    "music": {"early-childhood": 10, "primary": 40, "lower-secondary": 20, "senior": 20},
    "physical-education": {"primary": 45, "lower-secondary": 35, "upper-secondary": 20},
    "information-technology": {**_SCHOOL, "adult": 15, "senior": 20, "vocational": 5},
    "health": {**_ADULT, "primary": 8, "lower-secondary": 8},
    "life-skills": _ADULT,
    "vocational": {"vocational": 70, "adult": 30},
}
TYPE_WEIGHTS = {
    "video": 30,
    "text": 15,
    "exercise": 14,
    "lesson-plan": 10,
    "course": 6,
    "assessment": 6,
    "interactive": 5,
    "ebook": 5,
    "audio": 4,
    "image": 3,
    "simulation": 2,
}
LICENSE_WEIGHTS = {
    "CC-BY-4.0": 30,
    "CC-BY-NC-SA-4.0": 20,
    "all-rights-reserved": 15,
    "CC-BY-SA-4.0": 12,
    "CC-BY-NC-4.0": 10,
    "CC0-1.0": 5,
    "CC-BY-ND-4.0": 5,
    "public-domain": 3,
}
MINORITY = ["zh-Hant", "bo", "ug", "mn"]
# Accessibility features by type: (feature, probability).
FEATURES = {
    "video": [("captions", 0.6), ("transcript", 0.3), ("audioDescription", 0.05)],
    "audio": [("transcript", 0.5)],
    "text": [("tableOfContents", 0.4), ("structuralNavigation", 0.3), ("largePrint", 0.05)],
    "ebook": [("tableOfContents", 0.8), ("ttsMarkup", 0.1), ("displayTransformability", 0.3)],
    "image": [("alternativeText", 0.7)],
    "interactive": [("alternativeText", 0.3), ("highContrastDisplay", 0.1)],
    "simulation": [("alternativeText", 0.3)],
}
_DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
# (MIME type, file suffix, typical size in bytes) of an attachment, by type.
FILES = {
    "video": ("video/mp4", "mp4", 80e6),
    "audio": ("audio/mpeg", "mp3", 8e6),
    "image": ("image/png", "png", 1e6),
    "ebook": ("application/epub+zip", "epub", 4e6),
    "lesson-plan": (_DOCX, "docx", 300e3),
}
PDF = ("application/pdf", "pdf", 1e6)
ORGS = [
    ("北京市东城区教育研修学院", "Dongcheng Institute of Education"),
    ("惠民社区学院", "Huimin Community College"),
    ("东城区少年宫", "Dongcheng Children's Palace"),
    ("北京开放大学", "Beijing Open University"),
    ("东城区老年大学", "Dongcheng University for the Elderly"),
    ("市民学习网", "Citizens' Learning Network"),
]
ZH_NAMES = [
    "{t}",
    "{t}的初步认识",
    "{t}专项{k}",
    "{lv}{subj}：{t}",
    "{t}与{t2}",
    "{t}（第{n}课时）",
    "{t}知识点精讲",
    "趣味{t}",
    "{t}{k}",
]
EN_NAMES = [
    "{T}",
    "Introduction to {t}",
    "{T}: {k}",
    "{T} and {t2}",
    "Understanding {t}",
    "{T} (lesson {n})",
    "{T} for {lv} learners",
    "Fun with {t}",
]
ZH_SENTENCES = [
    "本{k}介绍{t}的基本概念，并结合{t2}讲解常见题型。",
    "适合{lv}学生使用，通过{n}道例题帮助理解{t}和{t2}。",
    "内容包括{t}、{t2}与{t3}，配有课后练习和参考答案。",
    "由一线教师录制，讲解{t}中的重点和难点。",
    "结合生活中的实例，引导学生探究{t}。",
    "复习{t}相关知识，巩固课堂所学。",
    "可用于课堂教学，也适合在家自主学习。",
]
EN_SENTENCES = [
    "An introduction to {t} with worked examples on {t2}.",
    "Suitable for {lv} learners; covers {t}, {t2} and {t3}.",
    "Includes practice questions and answers on {t}.",
    "Recorded by experienced teachers, this {k} explains the key ideas of {t}.",
    "Explore {t} through everyday examples and short activities.",
    "Use it in class or for self-study at home.",
]


def table(w: dict[str, int]) -> tuple[list[str], list[float]]:
    return list(w), cumulative(list(w.values()))


SUBJECT_TABLE = table(SUBJECT_WEIGHTS)
# English-first resources: English and IT materials are more often in English.
SUBJECTS_EN = table(
    {
        s: w * (2 if s in ("english", "information-technology") else 1)
        for s, w in SUBJECT_WEIGHTS.items()
    }
)
LEVEL_TABLES = {s: table(w) for s, w in LEVEL_WEIGHTS.items()}
TYPE_TABLE, LICENSE_TABLE = table(TYPE_WEIGHTS), table(LICENSE_WEIGHTS)
assert set(SUBJECT_WEIGHTS) == set(SUBJECTS) == set(TOPICS) == set(LEVEL_WEIGHTS)
assert set(TYPE_WEIGHTS) == set(TYPES)
assert {lv for w in LEVEL_WEIGHTS.values() for lv in w} <= set(LEVELS)
# Users' queries favour common topics less steeply than resources do: the tail is asked too.
QUERY_CUM = {subject: zipf(len(topics), 0.8) for subject, topics in TOPICS.items()}
