"""``probe-words``: a general-ability probe that SmolLM2-135M-Instruct starts good at, to show forgetting.

Short questions of three kinds, each with one right word: the plural of a regular noun ("What is the plural of
cat?" -> "cats"; nouns taking -s, -es and -ies), the opposite of a word with one clear opposite ("What is the
opposite of hot?" -> "cold") and the capital of a country ("What is the capital of France?" -> "Paris"). The pool is
fixed (no randomness beyond the split seed): 500 items are held out and measured every round of a learning run;
the rest are the train split (for replay and EWC's Fisher rows).

The verifier (:func:`probe_verifier`) reads the answer's first non-empty line: it passes when the right word is
there as a whole word, not right after "not" ("The plural of cat is cats." passes; "The plural of fox is futes."
and "The opposite of hot is not cold." fail).

Chosen by trying candidate kinds on SmolLM2 in its chat format (40 items each, 24 new tokens, word-in-first-line
reading): plural of a regular noun 0.97 (-es 0.85, -ies 0.88), opposite 0.93, capital 0.85; rejected: which of
two numbers is larger 0.28 (smaller 0.10), next letter 0.07, next or previous weekday 0.07, past tense 0.33,
-ing form 0.03, next number 0.00, one-digit addition in digits 0.57, copying a random letter string 0.47 (copying
a common word 1.00, but the right word is already in the question). Its start accuracy on the 500 held-out items
is measured by ``python -m benchmarks.real_calibration`` (benchmarks/README.md, "Calibration of the held-out
task"): SmolLM2 greedy in its chat format, 24 new tokens, **0.804** (95 % 0.767-0.836), measured once on
2026-12-07.
"""

from __future__ import annotations

import random
import re

from tokentree_env.tasks.base import Problem


def _words(text: str) -> tuple[str, ...]:
    """The whitespace-separated words of ``text``."""
    return tuple(text.split())


PLURAL_S = _words("""
animal ant apple arm artist baker ball balloon banana band bank barn basket bat bean bear bed bee bell belt bike bird
blanket boat bone book boot bottle bowl boy brick bridge brother bucket bug building button cake camel camera candle
cap car card carpet carrot castle cat cave chair chicken circle cloud clown coat coin computer cookie corner cow crab
crayon cup cupcake dancer desk dinosaur doctor dog doll dolphin donkey door dragon dream drum duck eagle ear egg
elephant engine eye face farm farmer feather field finger flag flower friend frog game garden gate giraffe girl goat
gift guitar hammer hand hat heart hill horse house island jacket jar key king kite kitten ladder lake lamp leg lemon
letter lion lizard lock map market mask monkey moon mountain mug nail name necklace nest net nose note ocean onion
orange owl page pail painter pan panda parrot pear pen pencil pig pillow pilot pin plane planet plant plate player
pocket pond prize puzzle queen rabbit rainbow ring river road robot rock rocket room rope rose ruler sailor school
seal seat seed shark shell ship shirt shoe shop sign singer sister skate skirt snake sock song spider spoon square
squirrel star stick stone street student swan table tail teacher tent tiger toe towel tower town toy train tree
triangle truck turtle umbrella vase wagon wall wheel whale window wing worm writer zebra apron badge bag bagel barrel
blade block board bolt bracelet bubble bull cable cage canal canoe cape chain chart cheek chin chip claw cliff clock
collar comb cone cord cowboy crane crow crown cushion deck drawer eel elbow envelope fan fence fork fountain frame
garage gear ghost glove grape hammock handle helmet hook horn hut jet jewel kettle kid kitchen knot lantern lid lip
log magnet marble medal meal melon mirror mitten motor nut oar oven paddle palace parade path peanut pebble pepper
petal pie pipe pirate pizza pot puppet purse rat ribbon rug sail saucer shed sheet shovel sled slide slipper snail
sofa stamp statue stool stove string sweater swing tablet teapot ticket tire toaster tool tray tulip tunnel vest
violin wallet wand whistle wig yard
""")
PLURAL_ES = _words("""
box bus dish fox glass watch brush church class dress beach bench branch coach peach sandwich lunch match wish kiss
boss inch torch witch bush flash tax patch switch sketch ditch address princess couch pouch stitch hatch crutch
mailbox lunchbox toolbox
""")
PLURAL_IES = _words("""
baby city lady party story puppy cherry berry body bunny butterfly candy country daisy diary family fairy fly hobby
jelly library lily penny pony spy strawberry army battery bakery copy duty enemy factory gallery memory mystery ferry
study sky
""")
OPPOSITES: tuple[tuple[str, str], ...] = tuple((a, b) for a, _, b in (pair.partition(":") for pair in _words("""
hot:cold cold:hot big:small up:down down:up fast:slow slow:fast happy:sad sad:happy day:night night:day left:right
black:white white:black wet:dry dry:wet early:late late:early full:empty empty:full rich:poor poor:rich strong:weak
weak:strong loud:quiet thick:thin clean:dirty dirty:clean top:bottom bottom:top win:lose buy:sell sell:buy push:pull
pull:push true:false false:true yes:no no:yes always:never never:always first:last last:first inside:outside
outside:inside above:below below:above before:after after:before alive:dead dead:alive awake:asleep asleep:awake
cheap:expensive expensive:cheap friend:enemy enemy:friend north:south south:north east:west west:east high:low
low:high love:hate hate:love question:answer answer:question summer:winter winter:summer remember:forget
forget:remember wide:narrow deep:shallow shallow:deep safe:dangerous dangerous:safe polite:rude rude:polite good:bad
bad:good positive:negative negative:positive add:subtract maximum:minimum minimum:maximum odd:even boy:girl girl:boy
king:queen queen:king man:woman woman:man husband:wife wife:husband brother:sister sister:brother son:daughter
daughter:son sunrise:sunset sunset:sunrise smooth:rough heavy:light young:old
""")))
CAPITALS: tuple[tuple[str, str], ...] = (
    ("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Germany", "Berlin"),
    ("England", "London"), ("Russia", "Moscow"), ("China", "Beijing"), ("Egypt", "Cairo"), ("Greece", "Athens"),
    ("Portugal", "Lisbon"), ("Ireland", "Dublin"), ("Norway", "Oslo"), ("Sweden", "Stockholm"),
    ("Finland", "Helsinki"), ("Denmark", "Copenhagen"), ("Poland", "Warsaw"), ("Austria", "Vienna"),
    ("Hungary", "Budapest"), ("Belgium", "Brussels"), ("the Netherlands", "Amsterdam"), ("Canada", "Ottawa"),
    ("Argentina", "Buenos Aires"), ("Peru", "Lima"), ("Chile", "Santiago"), ("Kenya", "Nairobi"),
    ("Thailand", "Bangkok"), ("Vietnam", "Hanoi"), ("South Korea", "Seoul"), ("Indonesia", "Jakarta"),
    ("the Philippines", "Manila"), ("Cuba", "Havana"), ("Iran", "Tehran"), ("Iraq", "Baghdad"),
    ("Saudi Arabia", "Riyadh"), ("the Czech Republic", "Prague"), ("Scotland", "Edinburgh"), ("Wales", "Cardiff"),
    ("Iceland", "Reykjavik"), ("Morocco", "Rabat"), ("Venezuela", "Caracas"), ("Nepal", "Kathmandu"),
    ("Afghanistan", "Kabul"), ("Syria", "Damascus"), ("Lebanon", "Beirut"), ("Jordan", "Amman"), ("Qatar", "Doha"),
    ("Romania", "Bucharest"), ("Bulgaria", "Sofia"), ("Serbia", "Belgrade"), ("Croatia", "Zagreb"),
    ("Estonia", "Tallinn"), ("Latvia", "Riga"), ("Lithuania", "Vilnius"), ("Jamaica", "Kingston"),
)


def plural(noun: str) -> str:
    """The plural of a regular noun of the probe's lists (-s, -es after s/x/ch/sh, -ies after a consonant + y)."""
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def probe_items() -> list[Problem]:
    """Every probe item, in a fixed order: plurals, opposites, capitals."""
    items = [Problem(f"What is the plural of {n}?", plural(n),
                     solutions={"step": f"The plural of {n} is {plural(n)}."})
             for n in PLURAL_S + PLURAL_ES + PLURAL_IES]
    items += [Problem(f"What is the opposite of {x}?", y, solutions={"step": f"The opposite of {x} is {y}."})
              for x, y in OPPOSITES]
    items += [Problem(f"What is the capital of {c}?", city, solutions={"step": f"The capital of {c} is {city}."})
              for c, city in CAPITALS]
    return items


PROBE_SIZE = 500
"""Held-out items (measured every round)."""
POOL_SIZE = 597
"""Items in the pool (:func:`probe_items`); the train split holds those not held out."""
_ITEMS: list[Problem] = []


def sample_probe(rng: random.Random) -> Problem:
    """One probe item drawn uniformly from the fixed pool."""
    if not _ITEMS:
        _ITEMS.extend(probe_items())
    return rng.choice(_ITEMS)


def probe_verifier(completion: str, answer: str) -> float:
    """1.0 when the answer's first non-empty line holds the right word (or words) as a whole word, not right after
    "not"; else 0.0."""
    lines = [line for line in completion.splitlines() if line.strip()]
    if not lines:
        return 0.0
    pattern = r"(?<![\w-])(?<!not )" + re.escape(answer.strip()) + r"(?![\w-])"
    return float(re.search(pattern, lines[0], re.IGNORECASE) is not None)


__all__ = ["CAPITALS", "OPPOSITES", "POOL_SIZE", "PROBE_SIZE", "plural", "probe_items", "probe_verifier", "sample_probe"]
