"""Hand-written material for the synthetic BlueLightCamp 2026 dataset.

Everything here is invented: people, handles, instances (all under the reserved
`.example` / `.example.org` / `.example.net` / `.example.com` names), sessions and quotes.
`generate.py` combines these tables with a seeded random generator.
"""

from __future__ import annotations

from dataclasses import dataclass, field

EVENT_NAME = "BlueLightCamp 2026"
EVENT_HASHTAGS = ("bluelightcamp", "blc26")
EVENT_TIMEZONE = "Europe/London"
EVENT_START_LOCAL = "2026-11-21T09:00:00"  # GMT in November, so also 09:00Z
EVENT_DURATION_S = 30600  # 09:00-17:30

INSTANCES = (
    "social.bluelight.example",
    "mastodon.example",
    "fedi.example.org",
    "toot.example.net",
    "norden.example.com",
)

ROOMS = ("Lighthouse", "Harbour", "Beacon", "Lantern")


@dataclass(frozen=True)
class AccountSpec:
    username: str
    host: str
    display_name: str
    lang: str = "en"
    note: str = ""
    weight: int = 3  # how chatty, relative
    bot: bool = False
    noindex: bool = False
    discoverable: bool = True
    name_emoji: str | None = None  # custom emoji shortcode shown in the display name

    @property
    def acct(self) -> str:
        return f"{self.username}@{self.host}"


ACCOUNTS: tuple[AccountSpec, ...] = (
    # the event's own instance
    AccountSpec(
        "bluelightcamp",
        "social.bluelight.example",
        "BlueLightCamp :blc_lamp:",
        note="An unconference about kind, useful technology. 21 November 2026.",
        weight=3,
        name_emoji="blc_lamp",
    ),
    AccountSpec(
        "blcbot",
        "social.bluelight.example",
        "BLC schedule bot",
        note="I post what is coming up next. Beep.",
        weight=0,
        bot=True,
    ),
    AccountSpec("maren", "social.bluelight.example", "Maren Vogtland", "de", weight=4),
    AccountSpec("tomasz", "social.bluelight.example", "Tomasz Wierzbicki", weight=3),
    AccountSpec("ifeoma", "social.bluelight.example", "Ifeoma Okonkwo-Hale", weight=3),
    AccountSpec("priya", "social.bluelight.example", "Priya Ramaswell", weight=3),
    # mastodon.example
    AccountSpec("jonas", "mastodon.example", "Jonas Brandtner", "de", weight=4),
    AccountSpec("aoife", "mastodon.example", "Aoife Brennagh", weight=5),
    AccountSpec("kwame", "mastodon.example", "Kwame Asantewaa", weight=3),
    AccountSpec("lotte", "mastodon.example", "Lotte van Dammer", "nl", weight=3),
    AccountSpec("samwise", "mastodon.example", "Sam Oyelaran-Pike", weight=5),
    AccountSpec("elif", "mastodon.example", "Elif Karasulu", weight=3),
    # fedi.example.org
    AccountSpec("camille", "fedi.example.org", "Camille Rouvière", "fr", weight=4),
    AccountSpec("rafa", "fedi.example.org", "Rafael Ortigosa", "es", weight=3),
    AccountSpec("hana", "fedi.example.org", "Hana Moriyasu", "ja", weight=3),
    AccountSpec("olu", "fedi.example.org", "Olúwaseun Adebanjo-Fry", weight=3),
    AccountSpec("devon", "fedi.example.org", "Devon Achterberg", weight=4, discoverable=False),
    # toot.example.net
    AccountSpec("mika", "toot.example.net", "Mika Virtavuori", weight=3),
    AccountSpec("ruth", "toot.example.net", "Ruth Okafor-Lind", weight=3),
    AccountSpec("bea", "toot.example.net", "Bea Sandival", "es", weight=3),
    AccountSpec("yusuf", "toot.example.net", "Yusuf Demirtaşlı", weight=4),
    AccountSpec(
        "nina",
        "toot.example.net",
        "Nina Parkhurst",
        weight=3,
        noindex=True,
        discoverable=False,
        note="Posts are for friends, not for search engines.",
    ),
    # norden.example.com
    AccountSpec("sigrid", "norden.example.com", "Sigrid Holmgårdh", "sv", weight=3),
    AccountSpec("lars", "norden.example.com", "Lars Eklundh", "sv", weight=3),
    AccountSpec("agnes", "norden.example.com", "Agnes Thorvaldt", "de", weight=3),
    AccountSpec(
        "pip",
        "norden.example.com",
        "Pip Castellane :coffee_cat:",
        weight=4,
        name_emoji="coffee_cat",
    ),
)

# Custom emoji per instance: shortcode -> instance that hosts the image.
CUSTOM_EMOJI: dict[str, str] = {
    "blc_lamp": "social.bluelight.example",
    "blc_wave": "social.bluelight.example",
    "party_blob": "mastodon.example",
    "coffee_cat": "norden.example.com",
}


@dataclass(frozen=True)
class Leader:
    name: str
    account: str | None = None  # username of an ACCOUNTS entry, if they post


@dataclass(frozen=True)
class SessionSpec:
    id: str
    title: str
    room: str
    start_s: int
    end_s: int
    leaders: tuple[Leader, ...]
    hashtag: str | None
    points: tuple[str, ...] = ()
    questions: tuple[str, ...] = ()
    # (language, text, leader index)
    quotes: tuple[tuple[str, str, int], ...] = ()
    photos: tuple[str, ...] = ()
    weight: int = 16  # about how many posts this session gets
    plenary: bool = False
    extra: dict[str, str] = field(default_factory=dict)


MAREN = Leader("Maren Vogtland", "maren")
KWAME = Leader("Kwame Asantewaa", "kwame")

SESSIONS: tuple[SessionSpec, ...] = (
    SessionSpec(
        "open",
        "Welcome & session pitching",
        "Lighthouse",
        0,
        2700,
        (MAREN, KWAME),
        None,
        points=(
            "sixteen slots and more than forty pitches",
            "the law of two feet: if you are not learning or contributing, move",
            "every session leader gets ninety seconds to pitch",
            "the board fills up in twenty minutes",
        ),
        questions=("Can two similar pitches merge into one session?",),
        quotes=(
            ("en", "The people who come are the right people.", 0),
            ("en", "Whatever happens is the only thing that could have.", 1),
            ("de", "Wer kommt, sind die Richtigen.", 0),
        ),
        photos=(
            "A long queue of people holding paper cards, waiting to pitch a session at a "
            "microphone in a bright hall.",
            "The session board: a grid of sticky notes on a glass wall, four columns for the "
            "rooms and four rows for the time slots.",
        ),
        weight=22,
        plenary=True,
    ),
    SessionSpec(
        "A1",
        "Accessible maps for everyone",
        "Lighthouse",
        3000,
        5700,
        (Leader("Ifeoma Okonkwo-Hale", "ifeoma"),),
        "blcA1",
        points=(
            "a map without a text alternative is a locked door",
            "step-free routes should be the default, not a filter",
            "tactile maps can be printed on swell paper for a few pence",
            "volunteers mapped every kerb cut in the old town in one weekend",
            "screen reader users want landmarks, not coordinates",
        ),
        questions=(
            "How do you keep kerb data up to date when the council digs up the street?",
            "Is there an open standard for indoor accessibility data yet?",
        ),
        quotes=(
            ("en", "If your route planner can't see the stairs, it isn't finished.", 0),
            ("en", "Accessibility data is just data nobody bothered to collect.", 0),
        ),
        photos=(
            "A tactile map of the venue on a table: raised lines for corridors and braille "
            "labels for each room.",
            "Ifeoma pointing at a projected street map where step-free routes are drawn in "
            "thick blue lines.",
        ),
    ),
    SessionSpec(
        "A2",
        "Running a tiny Fediverse server",
        "Harbour",
        3000,
        5700,
        (Leader("Tomasz Wierzbicki", "tomasz"),),
        "blcA2",
        points=(
            "a single-board computer handles a server for twenty friends",
            "most of the work is moderation, not hardware",
            "object storage bills grow faster than the user count",
            "backups you never restored are not backups",
            "write your server rules before you need them",
        ),
        questions=(
            "How much bandwidth does federation with the big servers really use?",
            "Who takes over if the admin goes on holiday?",
        ),
        quotes=(
            ("en", "Small servers are not small versions of big servers. They are villages.", 0),
            ("pl", "Serwer to ogród, nie maszyna.", 0),
        ),
        photos=(
            "A tiny computer the size of a deck of cards next to a coffee cup, with a label "
            "reading 'production'.",
        ),
    ),
    SessionSpec(
        "A3",
        "Low-tech solar websites",
        "Beacon",
        3000,
        5700,
        (Leader("Lotte van Dammer", "lotte"),),
        None,
        points=(
            "dithered images cut the page weight by ninety percent",
            "the site goes offline when the battery is empty, and that is fine",
            "a static site on a solar panel survives a whole Dutch winter",
            "showing the battery level on the page changes how people read it",
        ),
        questions=("What happens to the site during a week of fog?",),
        quotes=(
            ("nl", "Een website mag ook gewoon slapen.", 0),
            ("en", "A website is allowed to sleep.", 0),
        ),
        photos=(
            "A small solar panel propped against the window of the Beacon room, cabled to a "
            "laptop showing a battery graph.",
        ),
        weight=14,
    ),
    SessionSpec(
        "A4",
        "Community archives and oral history",
        "Lantern",
        3000,
        5700,
        (Leader("Rosa Quintanilla-Eve"),),
        "blcA4",
        points=(
            "consent forms need to be readable by the people you record",
            "an archive nobody can search is a box in an attic",
            "local libraries will host recordings if you ask early",
            "transcripts matter as much as the audio",
        ),
        questions=("How do you handle someone asking to be removed years later?",),
        quotes=(
            ("en", "Every street has an archive. Most of it is in people's kitchens.", 0),
            ("es", "La memoria de un barrio cabe en una caja de zapatos.", 0),
        ),
        photos=("A table covered in old photographs, cassette tapes and a portable recorder.",),
        weight=12,
    ),
    SessionSpec(
        "B1",
        "Open data for bus timetables",
        "Lighthouse",
        6600,
        9300,
        (Leader("Jonas Brandtner", "jonas"),),
        "blcB1",
        points=(
            "GTFS feeds are easy to publish and hard to keep correct",
            "real-time delays are the data people actually want",
            "rural routes disappear from apps because nobody publishes them",
            "a timetable PDF is not open data",
            "one volunteer digitised every village bus in the valley",
        ),
        questions=(
            "Do the operators get anything back when they publish their data?",
            "Who fixes the feed when a stop moves?",
        ),
        quotes=(
            ("de", "Ein Fahrplan ist ein Versprechen.", 0),
            ("en", "A timetable is a promise. Open data lets people check it.", 0),
        ),
        photos=(
            "A slide with a map of bus routes, the rural ones drawn in dashed grey lines "
            "because they are missing from every app.",
        ),
        weight=18,
    ),
    SessionSpec(
        "B2",
        "Moderation without burnout",
        "Harbour",
        6600,
        9300,
        (Leader("Aoife Brennagh", "aoife"), Leader("Elif Karasulu", "elif")),
        "blcB2",
        points=(
            "rotate the moderation shifts and write down what you decided",
            "a shared block list is a starting point, not a verdict",
            "moderators need someone to talk to after the bad days",
            "clear rules make decisions faster and kinder",
            "it is fine to close registrations for a while",
        ),
        questions=(
            "How many moderators per hundred active users is sustainable?",
            "Should moderation decisions be public?",
        ),
        quotes=(
            ("en", "You can't moderate a community you don't have time to like.", 0),
            ("en", "Burnout is a staffing problem wearing a personal costume.", 1),
            ("tr", "Moderasyon bir takım sporudur.", 1),
        ),
        photos=(
            "A whiteboard titled 'moderation rota' with a weekly grid and names written in "
            "different colours.",
        ),
        weight=20,
    ),
    SessionSpec(
        "B3",
        "Sketchnoting 101",
        "Beacon",
        6600,
        9300,
        (Leader("Hana Moriyasu", "hana"),),
        None,
        points=(
            "start with boxes, arrows and stick people",
            "the title banner is the easiest place to start",
            "nobody needs to be good at drawing to take visual notes",
            "a three-pen kit is enough: black, grey and one colour",
        ),
        questions=("Do you sketch live or clean it up afterwards?",),
        quotes=(
            ("ja", "線が曲がっていても大丈夫。", 0),
            ("en", "A wobbly line is still a line.", 0),
        ),
        photos=(
            "A page of sketchnotes: a lighthouse drawn in the title banner, arrows linking "
            "speech bubbles and small stick figures.",
            "Twenty people bent over notebooks drawing boxes, with pens scattered across "
            "the table.",
        ),
        weight=14,
    ),
    SessionSpec(
        "B4",
        "Privacy-first analytics",
        "Lantern",
        6600,
        9300,
        (Leader("Camille Rouvière", "camille"),),
        "blcB4",
        points=(
            "count visits, not visitors",
            "most dashboards answer questions nobody asked",
            "aggregate on the server and throw away the raw logs",
            "a cookie banner is a sign you collect too much",
        ),
        questions=("Can you measure a campaign without tracking anyone?",),
        quotes=(
            ("fr", "La meilleure donnée personnelle, c'est celle qu'on ne collecte pas.", 0),
            ("en", "The best personal data is the data you never collect.", 0),
        ),
        photos=(),
        weight=14,
    ),
    SessionSpec(
        "C1",
        "Repair cafés and the right to repair",
        "Lighthouse",
        13500,
        16200,
        (Leader("Rafael Ortigosa", "rafa"),),
        "blcC1",
        points=(
            "most broken toasters need a fuse and ten minutes",
            "manufacturers glue batteries in so you buy a new phone",
            "a repair café is a social event that happens to fix things",
            "spare parts availability should be printed on the box",
        ),
        questions=("How do repair cafés handle liability when a repair fails?",),
        quotes=(
            ("es", "Lo que no se puede reparar, no es nuestro.", 0),
            ("en", "If you can't repair it, you don't own it.", 0),
        ),
        photos=("An opened toaster on a workbench with a multimeter clipped to its wires.",),
        weight=16,
    ),
    SessionSpec(
        "C2",
        "Teaching kids to code with music",
        "Harbour",
        13500,
        16200,
        (Leader("Priya Ramaswell", "priya"),),
        None,
        points=(
            "loops make sense immediately when they are drum loops",
            "kids debug faster when they can hear the bug",
            "live coding a beat in front of the class beats any slide",
            "girls stayed in the club when the projects were their own songs",
        ),
        questions=("What do you use for kids who can't read yet?",),
        quotes=(
            ("en", "A for-loop is just a chorus.", 0),
            ("en", "The bug you can hear is the bug you fix.", 0),
        ),
        photos=(
            "A laptop connected to a small speaker, the screen showing a few lines of code "
            "that play a drum pattern.",
        ),
        weight=14,
    ),
    SessionSpec(
        "C3",
        "IndieWeb: own your posts",
        "Beacon",
        13500,
        16200,
        (Leader("Sigrid Holmgårdh", "sigrid"),),
        "blcC3",
        points=(
            "post on your own site first, then syndicate everywhere else",
            "webmentions turn replies on other sites into comments",
            "your domain is the one identity that moves with you",
            "a blog with an RSS feed is still the best social network",
        ),
        questions=("What happens to your posts when you stop paying for the domain?",),
        quotes=(
            ("sv", "Din domän är ditt hem på nätet.", 0),
            ("en", "Your domain is your home address on the web.", 0),
        ),
        photos=(),
        weight=16,
    ),
    SessionSpec(
        "C4",
        "Sustainable event logistics",
        "Lantern",
        13500,
        16200,
        (Leader("Olúwaseun Adebanjo-Fry", "olu"),),
        "blcC4",
        points=(
            "catering is most of an event's footprint",
            "reusable lanyards came back in ninety percent of cases",
            "choose a venue near a station and people will come by train",
            "leftover food apps emptied the buffet in twenty minutes",
        ),
        questions=("Is a hybrid event greener, or just more work?",),
        quotes=(("en", "The greenest swag is the swag you don't print.", 0),),
        photos=(
            "A crate of returned lanyards next to a hand-written sign saying 'thank you for "
            "bringing it back'.",
        ),
        weight=12,
    ),
    SessionSpec(
        "D1",
        "Local-first software",
        "Lighthouse",
        17100,
        19800,
        (Leader("Mika Virtavuori", "mika"),),
        "blcD1",
        points=(
            "your data should still open when the company is gone",
            "CRDTs make offline editing merge without a server deciding",
            "sync is a feature, the cloud is an implementation detail",
            "a file on disk is the most durable API ever invented",
        ),
        questions=(
            "How do you handle permissions when there is no server?",
            "Do CRDTs grow forever?",
        ),
        quotes=(
            ("en", "The cloud is just someone else's computer deciding what you may keep.", 0),
            ("fi", "Data kuuluu sille, joka sen tekee.", 0),
        ),
        photos=(
            "Two laptops side by side with their wifi switched off, both showing the same "
            "shopping list after syncing.",
        ),
        weight=16,
    ),
    SessionSpec(
        "D2",
        "Mentoring across timezones",
        "Harbour",
        17100,
        19800,
        (Leader("Ruth Okafor-Lind", "ruth"),),
        None,
        points=(
            "write things down so nobody has to be awake at the same time",
            "a weekly async check-in beats a monthly call",
            "mentees should set the agenda",
            "record the call for the person who had to sleep",
        ),
        questions=("How do you build trust without ever meeting?",),
        quotes=(("en", "Async is not slower. It is kinder to the person on the other side.", 0),),
        photos=(),
        weight=12,
    ),
    SessionSpec(
        "D3",
        "DIY air quality sensors",
        "Beacon",
        17100,
        19800,
        (Leader("Lars Eklundh", "lars"),),
        "blcD3",
        points=(
            "a particulate sensor costs less than a pizza",
            "calibrate against the official station before trusting your numbers",
            "the school run shows up clearly in the morning data",
            "put the sensor away from the kitchen window",
        ),
        questions=("How do you stop humidity from ruining the readings?",),
        quotes=(
            ("sv", "Man kan inte förbättra det man inte mäter.", 0),
            ("en", "You can't clean the air you never measured.", 0),
        ),
        photos=(
            "A handful of small circuit boards with fans and sensors, one of them inside a "
            "plant pot turned upside down as a weather shield.",
        ),
        weight=16,
    ),
    SessionSpec(
        "D4",
        "Writing better alt text",
        "Lantern",
        17100,
        19800,
        (Leader("Bea Sandival", "bea"), Leader("Nina Parkhurst", "nina")),
        "blcD4",
        points=(
            "describe what matters for the post, not every pixel",
            "start with the most important thing",
            "text in an image must be in the alt text",
            "'image of' wastes the first words a screen reader says",
        ),
        questions=("How long is too long for alt text?",),
        quotes=(
            ("en", "Alt text is writing, so write it like you mean it.", 0),
            ("en", "If the joke is in the picture, the joke belongs in the alt text.", 1),
            ("es", "Describe lo que importa, no cada píxel.", 0),
        ),
        photos=(
            "A slide reading 'What would you say if you described it on the phone?' in large "
            "white letters on dark blue.",
        ),
        weight=16,
    ),
    SessionSpec(
        "close",
        "Closing circle & thank-yous",
        "Lighthouse",
        27000,
        30600,
        (MAREN, KWAME),
        None,
        points=(
            "everyone says one word about their day",
            "a round of applause for the volunteers and the caterers",
            "next year's date will be announced in the spring",
            "the feedback form is open for a week",
        ),
        questions=(),
        quotes=(
            (
                "en",
                "An unconference is only as good as the hallway, and this hallway was great.",
                1,
            ),
            ("de", "Danke, dass ihr alle da wart.", 0),
        ),
        photos=(
            "About a hundred people standing in a big circle in the Lighthouse hall, some "
            "raising their hands.",
        ),
        weight=18,
        plenary=True,
    ),
)

SLOT_STARTS = sorted({s.start_s for s in SESSIONS if not s.plenary})

# Generic post templates. Placeholders: {title} {room} {leader} {point} {point2} {question}
SESSION_TEMPLATES: dict[str, tuple[str, ...]] = {
    "en": (
        "Packed room for “{title}” in {room}. {leader} opens with the idea that {point}.",
        "{leader} in {room}: {point}. Taking notes like mad.",
        "Key takeaway from “{title}”: {point}.",
        "Now in {room}: {title} with {leader}. Great discussion about how {point}.",
        "Question from the floor in {room}: {question}",
        "Loving the energy in {room} right now. “{point}” is such a good framing.",
        "Notes from “{title}”:\n1. {point}\n2. {point2}",
        "Just walked into {title}. Standing room only at the back of {room}!",
        "{title} is the session I didn't know I needed. Main point so far: {point}.",
        "TIL {point}. Thanks {leader}!",
        "Lively debate in {room} about whether {point}. No consensus, which is fine.",
        "Running late, but {room} is buzzing. {leader} is explaining that {point}.",
        "Reminder for everyone who missed it: {point}. ({title}, {room})",
        "Whoever voted for “{title}” at the pitching: thank you.",
        "Still thinking about the point in {room} that {point}.",
        "{title} in {room}: half the room is nodding, the other half is typing.",
        "My favourite moment of {title} so far: {leader} saying that {point}.",
        "Good question in {room}: {question} Nobody had a neat answer.",
    ),
    "de": (
        "Volles Haus in {room} bei „{title}“. Sehr spannend!",
        "Tolle Session von {leader} gerade. Viel gelernt.",
        "Sitze in {room} bei „{title}“ und schreibe fleißig mit.",
        "Gute Diskussion in {room}. Genau dafür fährt man zu einem Barcamp.",
    ),
    "fr": (
        "Salle {room} pleine pour « {title} ». Passionnant !",
        "Merci {leader} pour cette session, j’ai appris plein de choses.",
        "En direct de {room} : « {title} ». Beaucoup de bonnes questions.",
    ),
    "nl": (
        "Volle zaal in {room} voor {title}. Mooi!",
        "Goede discussie bij {title}. Dank je, {leader}!",
        "Zit nu in {room}, {title}. Veel om over na te denken.",
    ),
    "es": (
        "Sala llena en {room} para «{title}». ¡Muy interesante!",
        "Gracias {leader} por la sesión, ¡aprendí muchísimo!",
        "Ahora en {room}: {title}. Muy buenas preguntas del público.",
    ),
    "ja": (
        "{room}で「{title}」に参加中。とても面白い！",
        "{leader}さんのセッション、勉強になりました。",
        "「{title}」、会場は満員です。",
    ),
    "sv": (
        "Fullt i {room} för ”{title}”. Riktigt bra!",
        "Tack {leader} för en superbra session!",
        "Sitter i {room} på {title}. Mycket att tänka på.",
    ),
}

# How each language quotes a speaker. {q} quote text, {name} speaker, {title}, {room}.
QUOTE_STYLES: dict[str, tuple[str, ...]] = {
    "en": (
        "“{q}” — {name}",
        "“{q}” — {name} in {room}",
        '"{q}" - {name}, {title}',
        "‘{q}’ — {name}",
        "Quote of the day so far: “{q}” — {name}",
    ),
    "de": ("„{q}“ — {name}", "„{q}“ – {name} bei {title}"),
    "fr": ("« {q} » — {name}", "« {q} » (merci {name})"),
    "nl": ("“{q}” — {name}", "„{q}” – {name}"),
    "es": ("«{q}» — {name}", "“{q}” — {name}, en {room}"),
    "ja": ("「{q}」— {name}", "「{q}」 ({name})"),
    "sv": ("”{q}” — {name}", "»{q}« – {name}"),
    "pl": ("„{q}” — {name}",),
    "tr": ("“{q}” — {name}",),
    "fi": ("”{q}” — {name}",),
}

REPLY_TEMPLATES: tuple[str, ...] = (
    "Same here! The bit about how {point} was my favourite.",
    "Was this one recorded?",
    "Agreed. Also: {point}.",
    "Do you know if the slides will be shared?",
    "+1, and the discussion afterwards was even better.",
    "Thanks for the notes, I was stuck in {other_room}.",
    "Great summary. {leader} made that point so well.",
    "I'd love to read more about that. Any links?",
    "This! Exactly this.",
    "Hmm, I'm not fully convinced, but it was a good discussion.",
)

GENERAL_POSTS: dict[str, tuple[str, ...]] = {
    "before": (
        "On the train to #BlueLightCamp! Who else is coming from the north?",
        "Badges printed, urns on. Doors open at 08:30. See you soon! #blc26",
        "Packing my sketchbook and three pens for #BlueLightCamp today.",
        "First unconference ever today. Slightly nervous, mostly excited. #blc26",
        "Morgen... äh, heute! Auf dem Weg zum #BlueLightCamp.",
        "Coffee number one. Train number two. #blc26",
    ),
    "morning": (
        "The pitching queue for #BlueLightCamp is already thirty people long.",
        "So many session ideas on the board. How do I choose? #blc26",
        "Name badge: check. Coffee: check. Sticker laptop: check. #BlueLightCamp",
        "The room just did the law of two feet explanation and everyone laughed. #blc26",
    ),
    "break": (
        "Coffee break and the hallway track is already strong. #blc26",
        "Found a quiet corner by the Beacon room. Recharging for the next slot. #bluelightcamp",
        "The pastries at #BlueLightCamp deserve their own session.",
        "Met three people from my own town I had never met at home. #blc26",
        "Plugged into the one free socket in the building. #bluelightcamp",
    ),
    "lunch": (
        "Lunch at #BlueLightCamp: lentil stew, bread, and good conversations.",
        "The vegan lunch is excellent. #blc26",
        "Lunch queue strategy: talk to the person behind you. #bluelightcamp",
        "Sunshine in the courtyard, everyone outside for lunch. #blc26",
    ),
    "open_space": (
        "Open space afternoon: someone is soldering in Beacon. #blc26",
        "Board games in the Lantern room if you need a break. #bluelightcamp",
        "A spontaneous session on bike repair just started in the courtyard. #blc26",
        "The hallway track is the main track now. #bluelightcamp",
        "Three laptops, one projector, zero adapters. Classic. #blc26",
        "Somebody brought a tiny printer and is printing everyone's toots. #bluelightcamp",
    ),
    "after": (
        "Home again after #BlueLightCamp. Brain full, heart full.",
        "Thank you to all the volunteers at #blc26. What a day.",
        "Still buzzing from #BlueLightCamp. Same time next year?",
        "Writing up my notes from #blc26 tomorrow. Too tired tonight.",
        "Danke an alle beim #BlueLightCamp! Was für ein Tag.",
        "Merci à toute l’équipe du #BlueLightCamp !",
    ),
}

CW_POSTS: tuple[tuple[str, str, str], ...] = (
    # (spoiler_text, text, time-bucket)
    ("food", "The cake table at #blc26 has a whole lemon drizzle situation going on.", "break"),
    ("lunch pics", "Lunch photo dump from #BlueLightCamp, sorry in advance.", "lunch"),
    (
        "meta: event feedback",
        "Honest feedback for #blc26: the Lantern room was too small for two sessions in a "
        "row, and the mic in Harbour kept cutting out. Everything else was lovely.",
        "open_space",
    ),
    ("mild swearing", "Bloody hell, the hallway track at #bluelightcamp is good.", "break"),
    ("long thread", "Long thread about moderation tooling after #blc26 B2, bear with me.", "B2"),
    ("eye contact", "Selfie with the session board! #BlueLightCamp", "morning"),
    (
        "politics",
        "The bus timetable session got a bit political about council budgets. #blc26",
        "B1",
    ),
    ("quiz spoilers", "The answer to the pub quiz question was 'a lighthouse'. #blc26", "after"),
)

WRITEUPS: tuple[tuple[str, str, str, str, str], ...] = (
    # (author username, url, title, description, sessions they cover (comma separated))
    (
        "aoife",
        "https://blog.aoife.example/2026/11/22/bluelightcamp-moderation-notes",
        "Moderation without burnout: notes from BlueLightCamp 2026",
        "What we learned about rotas, shared block lists and looking after moderators.",
        "B2",
    ),
    (
        "jonas",
        "https://notizen.jonas.example/2026/blc26-fahrplaene",
        "Offene Fahrplandaten: mein Rückblick auf das BlueLightCamp",
        "Folien und Notizen zur Session über offene Busfahrpläne.",
        "B1",
    ),
    (
        "camille",
        "https://camille.example.org/notes/blc26-analytics",
        "Mesurer sans pister : retour sur BlueLightCamp",
        "Mes notes de la session sur l’analyse d’audience respectueuse de la vie privée.",
        "B4",
    ),
    (
        "samwise",
        "https://sam.example.net/posts/bluelightcamp-2026",
        "BlueLightCamp 2026: a day of kind technology",
        "A long recap of every session I attended, with sketchnotes.",
        "A1,B3,C3,D4",
    ),
    (
        "sigrid",
        "https://sigrid.example.com/2026/11/own-your-posts",
        "Own your posts: slides and links from my IndieWeb session",
        "Slides, links and the webmention demo from BlueLightCamp.",
        "C3",
    ),
    (
        "lars",
        "https://luft.lars.example/blog/sensor-workshop",
        "DIY air quality sensors: shopping list and code",
        "Everything you need to build the sensors from the BlueLightCamp session.",
        "D3",
    ),
    (
        "bea",
        "https://bea.example/escritos/alt-text-blc26",
        "Writing better alt text (session notes)",
        "Bea and Nina's tips for alt text, collected from the session.",
        "D4",
    ),
    (
        "devon",
        "https://devon.example.org/2026/11/21/first-unconference",
        "My first unconference",
        "What it felt like to attend BlueLightCamp without knowing anyone.",
        "open,close",
    ),
    (
        "mika",
        "https://mika.example.net/local-first-at-blc26",
        "Local-first software at BlueLightCamp",
        "Notes and follow-up reading on CRDTs and sync.",
        "D1",
    ),
    (
        "ifeoma",
        "https://ifeoma.example/2026/accessible-maps-session",
        "Accessible maps for everyone: what came out of the session",
        "Kerb cuts, tactile maps and how to help map your town.",
        "A1",
    ),
)

PHOTO_GENERAL: tuple[str, ...] = (
    "The venue's entrance hall with a blue neon sign reading 'BlueLightCamp'.",
    "A coffee urn surrounded by mismatched mugs and a plate of cinnamon buns.",
    "A sticker-covered laptop lid showing a lighthouse sticker in the middle.",
    "People sitting on the courtyard steps in pale November sunshine, holding lunch bowls.",
    "A volunteer in a blue T-shirt handing out name badges at the registration desk.",
)

# What session leaders post about their own session. {title} {room} {point}
LEADER_TEMPLATES: dict[str, tuple[str, ...]] = {
    "start": (
        "Starting my session “{title}” in {room} now. Come along!",
        "About to kick off {title} in {room}. Slightly nervous, very excited.",
        "{room} is filling up for {title}. Thank you all for coming!",
    ),
    "end": (
        "Thanks to everyone who came to “{title}”! Slides will follow, promise.",
        "That was fun. Best question in “{title}” was about how {point}.",
        "Wrapped up {title}. My voice is gone, my notebook is full.",
    ),
}

BOT_TEMPLATE = "Up next at {time}:\n{lines}"

OFFICIAL_POSTS: tuple[tuple[int, str], ...] = (
    (-2400, "Good morning! Doors open at 08:30, coffee is ready. #BlueLightCamp #blc26"),
    (2760, "The session board is full! Find it by the coffee, or online later. #blc26"),
    (9360, "Lunch is served in the courtyard. Sessions resume at 12:45. #bluelightcamp"),
    (19860, "Open space until 16:30: grab any free room. #blc26"),
    (26400, "Closing circle in 10 minutes in the Lighthouse hall. #BlueLightCamp"),
    (31200, "Thank you all for #BlueLightCamp 2026! Feedback form is open for a week. #blc26"),
)
