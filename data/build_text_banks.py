"""Build the shipped text banks (deterministic; no downloads): ``python data/build_text_banks.py``.

Writes ``pluralign/data/text_banks/pets.jsonl`` and ``responses.jsonl`` (inside the package, so an
installed pluralign finds them). All text is composed here from hand-written phrase lists; every
attribute is then measured from the composed text by :mod:`pluralign.data.text_attributes`, never taken
from the recipe that built it. See ``data/DATASHEET.md``.

- pets: VPL's synthetic pets recipe (Poddar et al. 2024): four banks of one-sentence statements about
  four pet species; as in the VPL code, the species stands for a quadrant of (helpful, harmless):
  birds = helpful & harmless, dogs = helpful & harmful, cats = unhelpful & harmless,
  rabbits = unhelpful & harmful.
- responses: answers to 25 prompts (pets, cooking, travel, study, health) whose length, readability,
  formality and sentiment are varied independently by the composer.
"""

from __future__ import annotations

import itertools
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pluralign.data.text_attributes import measure  # noqa: E402
from pluralign.io import write_jsonl  # noqa: E402

OUT = ROOT / "pluralign" / "data" / "text_banks"
SEED = 0
TEST_EVERY = {"pets": 5, "responses": 4}  # every k-th text of a bank goes to the test split

# ----------------------------------------------------------------------------------------------- pets
PETS_PROMPT = "Please talk about one kind of pet."
PET_SUBJECTS = {
    "bird": ["Birds", "Parrots", "Pet birds", "Canaries", "Budgies"],
    "dog": ["Dogs", "Puppies", "Pet dogs", "Most dogs", "Family dogs"],
    "cat": ["Cats", "Kittens", "Pet cats", "Most cats", "House cats"],
    "rabbit": ["Rabbits", "Bunnies", "Pet rabbits", "Most rabbits", "House rabbits"],
}
PET_PREDICATES = {
    "bird": [
        "sing to greet the morning light", "preen their feathers every day", "like a roomy cage near a window",
        "crack seeds with their strong beaks", "can learn to mimic simple words", "bathe happily in a shallow dish",
        "need perches of different widths", "enjoy chewing on soft wooden toys", "fluff up their feathers to stay warm",
        "call loudly when they feel lonely", "bob their heads to music", "molt and regrow their feathers once a year",
        "like fresh greens with their seeds", "sleep best under a covered cage", "learn to step onto a finger",
        "notice every colour around them", "flap their wings for exercise", "chirp softly when they are content",
        "keep their beaks trim on a cuttlebone", "form close bonds with one person", "enjoy a mirror and a bell",
        "watch the world from a high perch", "whistle tunes they hear often", "need clean water every morning",
    ],
    "dog": [
        "wag their tails when their owners come home", "love a long walk in the park", "fetch sticks and balls for hours",
        "learn to sit and stay with treats", "bark to warn the family of strangers", "sniff every corner of the yard",
        "dig holes in soft garden soil", "curl up at the foot of the bed", "need their nails clipped now and then",
        "chew on bones to clean their teeth", "pant to cool down on hot days", "greet other dogs with a sniff",
        "guard the house at night", "splash happily through puddles", "follow a scent trail across a field",
        "howl along with passing sirens", "beg at the table for scraps", "ride with their heads out of car windows",
        "shake off water after a bath", "can be trained to herd sheep", "roll over for a belly rub",
        "carry their leash to the door", "nap in warm patches of sunlight", "remember the sound of the food bag",
    ],
    "cat": [
        "purr when they are stroked", "nap for most of the afternoon", "chase a string across the floor",
        "groom their fur with rough tongues", "climb to the top of the bookshelf", "knead soft blankets with their paws",
        "stare out of windows at birds", "hide in cardboard boxes", "land on their feet after a fall",
        "sharpen their claws on a scratching post", "slip through narrow gaps", "hunt mice in the barn",
        "flick their tails when annoyed", "see well in dim light", "rub their cheeks against furniture",
        "ignore their names when it suits them", "sleep curled into a tight ball", "leap onto kitchen counters",
        "bat at dangling toys", "keep their litter box tidy", "meow at the door at dawn",
        "sit in the warm spot on the sofa", "pounce on moving shadows", "blink slowly at people they trust",
    ],
    "rabbit": [
        "hop around the garden", "twitch their noses constantly", "nibble on fresh hay all day",
        "thump their back feet when startled", "dig long burrows underground", "chew on cardboard and twigs",
        "groom their long ears", "flop onto their sides when relaxed", "leap and twist in the air when happy",
        "eat leafy greens and herbs", "hide under low furniture", "sleep with their eyes open",
        "need a large pen to explore", "live happily in pairs", "use a litter tray when trained",
        "stretch out on cool tiles in summer", "munch on a small piece of carrot", "sniff new visitors carefully",
        "run fast in zigzags", "keep their teeth short by chewing", "lick their owners as a sign of trust",
        "shed their coats in spring", "hop onto the sofa to rest", "rest in the shade of a hutch",
    ],
}
PETS_QUADRANT = {  # VPL's species -> (helpful, harmless) tags
    "bird": (1, 1),
    "dog": (1, 0),
    "cat": (0, 1),
    "rabbit": (0, 0),
}
PETS_PER_SPECIES = 100


def build_pets(rng: random.Random) -> list[dict]:
    rows = []
    for species, subjects in PET_SUBJECTS.items():
        combos = [f"{s} {p}." for s, p in itertools.product(subjects, PET_PREDICATES[species])]
        rng.shuffle(combos)
        helpful, harmless = PETS_QUADRANT[species]
        for i, text in enumerate(combos[:PETS_PER_SPECIES]):
            rows.append({
                "id": f"pets-{species}-{i:03d}",
                "species": species,
                "helpful": helpful,
                "harmless": harmless,
                "text": text,
                "split": "test" if i % TEST_EVERY["pets"] == TEST_EVERY["pets"] - 1 else "train",
            })
    return rows


# ------------------------------------------------------------------------------------------ responses
PROMPTS = {
    "pets": [
        "How do I keep my dog healthy?", "What should I know before adopting a cat?",
        "How can I help a new pet settle in?", "How do I care for a rabbit?", "How often should I groom my pet?",
    ],
    "cooking": [
        "How do I cook rice well?", "What is a quick weeknight dinner?", "How can I cook with less salt?",
        "How do I bake bread at home?", "How should I store fresh vegetables?",
    ],
    "travel": [
        "How do I pack light for a trip?", "How can I travel on a small budget?", "How do I deal with jet lag?",
        "What should I do before a long flight?", "How do I plan a weekend city trip?",
    ],
    "study": [
        "How can I study better for exams?", "How do I stop procrastinating?", "How do I take good notes?",
        "How can I learn a new language?", "How do I stay focused while reading?",
    ],
    "health": [
        "How can I sleep better?", "How do I start exercising?", "How much water should I drink?",
        "How can I manage stress?", "How do I eat a more balanced diet?",
    ],
}
# Each idea as (simple, complex): the same advice in short plain words or long Latinate ones, so the
# composer can move readability without moving the content.
IDEAS = {
    "pets": [
        ("Feed it the same good food at the same time each day.",
         "Establishing a consistent feeding schedule with nutritionally appropriate food considerably supports digestive regularity."),
        ("Take it for a walk or play with it every day.",
         "Regular physical activity and interactive play substantially contribute to behavioural stability and cardiovascular fitness."),
        ("Take it to the vet once a year for a check.",
         "Annual veterinary examinations facilitate the early identification of developing medical conditions."),
        ("Give it a quiet bed where it can rest.",
         "Providing a secluded, comfortable resting area considerably reduces anxiety during the adjustment period."),
        ("Brush its coat and trim its nails when they get long.",
         "Systematic grooming, including brushing and nail maintenance, prevents uncomfortable dermatological complications."),
        ("Keep fresh water in a clean bowl at all times.",
         "Continuous availability of uncontaminated water is indispensable for physiological regulation."),
        ("Praise it and give a treat when it does well.",
         "Positive reinforcement through immediate verbal recognition and occasional rewards accelerates behavioural training."),
    ],
    "cooking": [
        ("Wash the grains and use the right amount of water.",
         "Rinsing the grains thoroughly and measuring the liquid proportionally produces a considerably more consistent texture."),
        ("Cook on low heat and do not rush it.",
         "Maintaining moderate, controlled temperatures throughout preparation prevents uneven cooking and scorching."),
        ("Use herbs, lemon and garlic in place of salt.",
         "Aromatic herbs, citrus acidity and garlic provide considerable flavour complexity without additional sodium."),
        ("Make a plan for the week and shop once.",
         "Organizing a comprehensive weekly meal schedule and consolidating purchasing minimizes unnecessary expenditure."),
        ("Keep greens cool and dry in the fridge.",
         "Refrigerating leafy vegetables in a moderately humid, ventilated compartment substantially extends their usability."),
        ("Taste as you go and fix it at the end.",
         "Evaluating the seasoning continuously and implementing final adjustments ensures a harmonious flavour profile."),
        ("Cook a big batch and freeze some for later.",
         "Preparing substantial quantities and refrigerating individual portions considerably simplifies subsequent evenings."),
    ],
    "travel": [
        ("Pack a few clothes you can mix and match.",
         "Selecting a limited collection of interchangeable garments considerably reduces luggage volume."),
        ("Book your trip early and look for deals.",
         "Reserving transportation and accommodation considerably in advance frequently yields substantial financial advantages."),
        ("Drink lots of water and get up to walk on the plane.",
         "Maintaining adequate hydration and periodically circulating throughout the aircraft diminishes physiological discomfort."),
        ("Go to bed at the local time when you land.",
         "Synchronizing sleeping patterns with the destination's schedule accelerates circadian adaptation."),
        ("Keep your passport and cards in one safe spot.",
         "Consolidating identification documents and financial instruments in a secure location prevents complications."),
        ("Pick two or three sights and take your time.",
         "Prioritizing a limited selection of significant attractions facilitates a considerably more satisfying itinerary."),
        ("Take the bus or train like the locals do.",
         "Utilizing public transportation networks provides economical mobility and authentic cultural observation."),
    ],
    "study": [
        ("Study a bit each day, not all at once.",
         "Distributing revision sessions systematically across several weeks substantially improves long-term retention."),
        ("Test yourself with old questions.",
         "Practising retrieval with previous examination questions considerably strengthens memory consolidation."),
        ("Put your phone in a different room.",
         "Eliminating digital distractions from the immediate environment considerably enhances concentration."),
        ("Break big tasks into small steps.",
         "Decomposing substantial assignments into manageable components diminishes procrastination and anxiety."),
        ("Write notes in your own words.",
         "Paraphrasing information independently promotes deeper comprehension and facilitates subsequent revision."),
        ("Take a short break every hour.",
         "Incorporating periodic intervals of relaxation prevents cognitive fatigue during extended study."),
        ("Say new words out loud and use them.",
         "Articulating unfamiliar vocabulary and integrating it into conversation accelerates linguistic acquisition."),
    ],
    "health": [
        ("Go to bed and get up at the same time.",
         "Maintaining consistent sleeping and waking times stabilizes circadian physiology considerably."),
        ("Start with a short walk each day.",
         "Commencing with moderate, regular physical activity gradually develops cardiovascular endurance."),
        ("Drink a glass of water with each meal.",
         "Consuming adequate fluids consistently throughout the day supports metabolic and cognitive performance."),
        ("Take slow, deep breaths when you feel tense.",
         "Practising controlled diaphragmatic breathing during stressful situations diminishes physiological arousal."),
        ("Fill half your plate with fruit and greens.",
         "Incorporating substantial quantities of fruit and vegetables ensures sufficient micronutrient consumption."),
        ("Keep screens out of the bedroom at night.",
         "Eliminating electronic devices from the sleeping environment considerably improves sleep quality."),
        ("Talk to a friend when things feel hard.",
         "Communicating regularly with supportive individuals provides considerable psychological resilience."),
    ],
}
# (formality level 0..2, sentiment level 0..2) -> opening lines
OPENERS = {
    (0, 0): ["Ugh, honestly this stuff is kinda annoying.", "Oof, yeah, this one's a pain.", "Man, this gets frustrating fast, dude."],
    (0, 1): ["Okay, so here's the deal.", "Hey, so basically it goes like this.", "Alright, here's what I'd do."],
    (0, 2): ["Oh, great question, love it!", "Hey, this is super fun stuff!", "Yay, awesome question!"],
    (1, 0): ["Sadly, this is often harder than it looks.", "This can be a frustrating problem.", "It is a common and tiresome problem."],
    (1, 1): ["Here is what to do.", "There are a few steps to follow.", "Here is a simple plan."],
    (1, 2): ["Good news: this is easier than it looks.", "This is a great thing to work on.", "It is a nice question with a happy answer."],
    (2, 0): ["Regrettably, this matter is frequently troublesome.", "Unfortunately, this issue is often difficult and disappointing.", "Regrettably, individuals frequently find this problem stressful."],
    (2, 1): ["Regarding this question, several considerations merit attention.", "The following considerations are pertinent to this matter.", "Several points merit consideration regarding this question."],
    (2, 2): ["Fortunately, this matter is generally rewarding to address.", "It is a pleasure to address this excellent question.", "Fortunately, individuals usually find this a satisfying undertaking."],
}
CLOSERS = {
    (0, 0): ["Yeah, it's a mess, sorry.", "Ugh, good luck with that stuff.", "Honestly it's kinda miserable, but whatever."],
    (0, 1): ["Anyway, that's about it.", "Okay, hope that makes sense.", "Alright, that's the gist, pal."],
    (0, 2): ["You're gonna love it, trust me!", "Have fun, it's awesome!", "Yay, you've got this, it's super fun!"],
    (1, 0): ["Sadly, it can still feel like a chore.", "It is tedious work, and setbacks are common.", "Expect some bad days and a few problems."],
    (1, 1): ["That covers the main steps.", "Those are the main points.", "Start with one step and build from there."],
    (1, 2): ["You will enjoy the results.", "It is rewarding, and you will be glad you did it.", "Enjoy it, it is a lovely habit."],
    (2, 0): ["Regrettably, setbacks and disappointment remain common.", "Unfortunately, the process is frequently exhausting.", "Individuals should nevertheless anticipate considerable difficulty."],
    (2, 1): ["These recommendations should therefore be applied consistently.", "Accordingly, one should proceed gradually.", "Consequently, a gradual approach is advisable."],
    (2, 2): ["Fortunately, the outcome is consistently gratifying.", "Individuals are usually delighted with the results.", "Indeed, the benefits are excellent and lasting."],
}
# Register markers that introduce a middle sentence, by formality level.
CONNECTORS = {
    0: ["Basically, ", "Also, ", "Oh and ", "Plus, honestly, ", "Anyway, ", "Yeah, and "],
    1: ["Also, ", "Then, ", "Next, ", "", "", "And "],
    2: ["Furthermore, ", "Moreover, ", "Additionally, ", "Consequently, ", "Indeed, ", "Accordingly, "],
}
# Sentiment clauses appended to a sentence, by sentiment level (level 1 = neutral: none).
SENTIMENT_TAILS = {
    0: ["It is tedious, sadly.", "That part is often a frustrating mess.", "Honestly, that bit is boring and hard.", "It can feel like a painful chore."],
    2: ["It is a lovely, easy win.", "That part is fun and rewarding.", "You will enjoy this bit, it is great.", "It feels wonderful when it works."],
}
RESPONSES_PER_PROMPT = 64


def _lower_first(s: str) -> str:
    return s[0].lower() + s[1:] if s and not s.startswith("I ") else s


def compose_response(rng: random.Random, topic: str) -> str:
    formality, mood = rng.randrange(3), rng.randrange(3)
    n_ideas = rng.randint(1, 6)
    complex_frac = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0])
    ideas = rng.sample(IDEAS[topic], n_ideas)
    parts: list[str] = []
    if rng.random() < 0.85:
        parts.append(rng.choice(OPENERS[(formality, mood)]))
    for i, (simple, complicated) in enumerate(ideas):
        sentence = complicated if rng.random() < complex_frac else simple
        connector = rng.choice(CONNECTORS[formality]) if i > 0 and rng.random() < 0.7 else ""
        parts.append(connector + _lower_first(sentence) if connector else sentence)
        tail = rng.choice(SENTIMENT_TAILS[mood]) if mood != 1 and rng.random() < 0.35 else None
        if tail and tail not in parts:
            parts.append(tail)
    if rng.random() < 0.6:
        parts.append(rng.choice(CLOSERS[(formality, mood)]))
    return " ".join(parts)


def build_responses(rng: random.Random) -> list[dict]:
    rows = []
    for topic, prompts in PROMPTS.items():
        for p, prompt in enumerate(prompts):
            seen: set[str] = set()
            while len(seen) < RESPONSES_PER_PROMPT:
                text = compose_response(rng, topic)
                if text in seen:
                    continue
                i = len(seen)
                seen.add(text)
                rows.append({
                    "id": f"{topic}-{p}-{i:02d}",
                    "topic": topic,
                    "prompt_id": f"{topic}-{p}",
                    "prompt": prompt,
                    "text": text,
                    "split": "test" if i % TEST_EVERY["responses"] == TEST_EVERY["responses"] - 1 else "train",
                    "attributes": measure(text),
                })
    return rows


def main() -> None:
    rng = random.Random(SEED)
    pets = build_pets(rng)
    responses = build_responses(rng)
    for name, rows in (("pets", pets), ("responses", responses)):
        write_jsonl(OUT / f"{name}.jsonl", rows)
        (OUT / f"{name}.jsonl").chmod(0o644)  # package data: readable by all, unlike a fresh temp file
    print(f"pets: {len(pets)} sentences; responses: {len(responses)} responses to "
          f"{len({r['prompt_id'] for r in responses})} prompts -> {OUT}")


if __name__ == "__main__":
    main()
