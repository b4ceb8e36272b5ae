"""The 25 kinds of web task: page parameters, instruction, and scripted solutions.

Each kind is one page of ``docker/web/pages/`` (``<kind>.html``) and one
function here that draws the page's parameters from a seeded generator and
writes the instruction, an oracle solution and a plausible wrong one.

The scripts name element ids, and a reference agent replays them without
looking at the page, so the ids are computed here from the parameters. That
works because the driver numbers interactive elements in document order the
first time it sees them, hidden ones included, and every page builds all its
widgets at load: each page's script documents its id layout in a comment
("Ids: …"), and the tests check every kind against the real page.
"""

from __future__ import annotations

import calendar
import datetime
import random
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Action = tuple[str, dict[str, Any]]
"""One tool call: (tool name, arguments)."""

WORDS = (
    "apple anchor arrow autumn badge bamboo banner basket beacon berry blossom bottle breeze "
    "bridge bubble button cabin cactus camera candle canyon carpet castle cedar cherry circle "
    "clover cobalt comet copper coral cotton crystal dagger desert dolphin dragon ember engine "
    "falcon feather fiddle forest fossil galaxy garden garnet ginger glacier harbor hazel helmet "
    "honey island ivory jacket jasmine jungle kettle kitten ladder lagoon lantern lemon lily "
    "lizard magnet maple marble meadow melon mirror monkey mosaic needle nickel oasis olive "
    "orange orchid otter paddle panda pepper pillow planet pocket pretzel puzzle quartz rabbit "
    "radish raven ribbon river rocket saddle salmon sapphire scarf shadow silver sketch spider "
    "spruce summit sunset tablet teapot thistle thunder ticket timber tomato tulip tunnel "
    "turtle velvet violin walnut willow window winter wizard yogurt zebra zephyr"
).split()
FIRST = ("Ada Alan Bea Carl Dana Eli Fay Gus Hana Ivan Jade Kurt Lena Milo Nora Otto Pia Quinn "
         "Rosa Sami Tara Uma Vera Wes Xena Yuri Zoe").split()
LAST = ("Abbott Baker Chen Diaz Evans Fischer Garcia Hughes Ito Jensen Khan Lopez Moreau Novak "
        "Olsen Patel Quist Rossi Silva Tanaka").split()
LISTS = {
    "Country": "Austria Belgium Brazil Canada Chile Denmark Egypt Finland France Germany Greece "
               "India Ireland Italy Japan Kenya Mexico Norway Peru Poland Portugal Spain Sweden "
               "Turkey Vietnam".split(),
    "Fruit": "Apricot Banana Cherry Date Fig Grape Guava Kiwi Lemon Lime Mango Melon Orange "
             "Papaya Peach Pear Plum Quince".split(),
    "Animal": "Badger Beaver Camel Cobra Coyote Eagle Ferret Gecko Heron Hyena Koala Lemur "
              "Llama Moose Otter Panda Puma Sloth Tapir Walrus".split(),
    "Instrument": "Banjo Cello Drum Flute Guitar Harp Lute Oboe Organ Piano Sitar Tuba Viola "
                  "Violin Zither".split(),
}
COLOURS = ("red orange yellow green teal blue navy purple pink brown grey black").split()
TABS = ("Home Profile Settings Messages Billing Help Security Reports").split()
SECTIONS = ("Shipping Returns Payment Warranty Account Privacy Delivery Support").split()
PLANS = ("Starter Basic Plus Pro Team Business Premium Ultimate").split()
DIALOGS = (["OK", "Cancel"], ["Yes", "No"], ["Save", "Discard", "Cancel"], ["Accept", "Decline"])
SCROLL_STEP, VIEW_HEIGHT = 500, 600
"""scroll('down') moves 500 px (driver's page.js); the viewport is 800 x 600."""


@dataclass(frozen=True)
class Draft:
    """One drawn task, before it has an id and a split."""

    kind: str
    params: dict[str, Any]
    prompt: str
    oracle: list[Action]
    wrong: list[Action]
    hacks: dict[str, list[Action]] = field(default_factory=dict)
    """Kind-specific forgery attempts (on top of the env's generic ones)."""


Maker = Callable[[random.Random], Draft]
KINDS: dict[str, Maker] = {}
"""Every kind, by name (= its page's file name without ``.html``)."""


def _kind(name: str) -> Callable[[Callable[[random.Random], tuple]], Maker]:
    def register(fn: Callable[[random.Random], tuple]) -> Maker:
        def make(rng: random.Random) -> Draft:
            return Draft(name, *fn(rng))
        make.__doc__ = fn.__doc__
        KINDS[name] = make
        return make
    return register


def click(element: int) -> Action:
    return ("click", {"id": element})


def type_(element: int, text: str) -> Action:
    return ("type", {"id": element, "text": text})


def press(key: str) -> Action:
    return ("press", {"key": key})


def scroll(direction: str) -> Action:
    return ("scroll", {"direction": direction})


def goto(path: str) -> Action:
    return ("goto", {"path": path})


def _other(rng: random.Random, n: int, not_this: int) -> int:
    return rng.choice([i for i in range(n) if i != not_this])


def _secret(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(n))


# ------------------------------------------------------------------ clicking
@_kind("click-button")
def _click_button(rng: random.Random) -> tuple:
    """Click the button with a given label among 3-6."""
    labels = rng.sample(WORDS, rng.randint(3, 6))
    t = rng.randrange(len(labels))
    return ({"labels": labels, "target": t}, f'Click the button "{labels[t]}".',
            [click(t + 1)], [click(_other(rng, len(labels), t) + 1)])


@_kind("click-link")
def _click_link(rng: random.Random) -> tuple:
    """Click one of four links inside a paragraph of words."""
    words = rng.sample(WORDS, 12)
    links = sorted(rng.sample(range(12), 4))
    k = rng.randrange(4)
    return ({"words": words, "links": links, "target": links[k]},
            f'Click the link "{words[links[k]]}".', [click(k + 1)], [click(_other(rng, 4, k) + 1)])


@_kind("click-checkboxes")
def _click_checkboxes(rng: random.Random) -> tuple:
    """Tick exactly the named checkboxes, then submit."""
    n = rng.randint(3, 6)
    labels = rng.sample(WORDS, n)
    targets = sorted(rng.sample(range(n), rng.randint(1, n - 1)))
    extra = rng.choice([i for i in range(n) if i not in targets])
    names = ", ".join(f'"{labels[i]}"' for i in targets)
    return ({"labels": labels, "targets": targets},
            f"Tick {names} and nothing else, then click Submit.",
            [click(i + 1) for i in targets] + [click(n + 1)],
            [click(i + 1) for i in sorted([*targets, extra])] + [click(n + 1)])


@_kind("click-option")
def _click_option(rng: random.Random) -> tuple:
    """Choose one radio button, then submit."""
    labels = rng.sample(WORDS, rng.randint(3, 5))
    n, t = len(labels), rng.randrange(len(labels))
    return ({"labels": labels, "target": t}, f'Choose "{labels[t]}" and click Submit.',
            [click(t + 1), click(n + 1)], [click(_other(rng, n, t) + 1), click(n + 1)])


@_kind("click-tab")
def _click_tab(rng: random.Random) -> tuple:
    """Switch to a tab and click a link that only that tab shows."""
    n_tabs = rng.randint(2, 4)
    tabs = rng.sample(TABS, n_tabs)
    words = rng.sample(WORDS, 3 * n_tabs)
    links = [words[3 * t:3 * t + 3] for t in range(n_tabs)]
    t, j = rng.randint(1, n_tabs - 1), rng.randrange(3)
    return ({"tabs": tabs, "links": links, "target": [t, j]},
            f'Switch to the "{tabs[t]}" tab and click the link "{links[t][j]}".',
            [click(t + 1), click(n_tabs + 3 * t + j + 1)],
            [click(n_tabs + rng.randrange(3) + 1)])


@_kind("search-select")
def _search_select(rng: random.Random) -> tuple:
    """Search a directory of 20 names (5 shown at a time) and click the match."""
    names = rng.sample([f"{f} {s}" for f in FIRST for s in LAST], 20)
    t = rng.randint(5, 19)
    return ({"items": names, "target": t, "shown": 5},
            f'Find "{names[t]}" with the search box and click it.',
            [type_(1, names[t]), click(2), click(t + 3)], [click(3)])


@_kind("click-nth-item")
def _click_nth(rng: random.Random) -> tuple:
    """Click the n-th item of a list."""
    items = rng.sample(WORDS, rng.randint(4, 8))
    nth = rng.randint(1, len(items))
    ordinal = {1: "1st", 2: "2nd", 3: "3rd"}.get(nth, f"{nth}th")
    return ({"items": items, "nth": nth},
            f'Click the {ordinal} item of the list that starts with "{items[0]}".',
            [click(nth)], [click(nth % len(items) + 1)])


@_kind("click-collapsible")
def _click_collapsible(rng: random.Random) -> tuple:
    """Expand a collapsed section and click a button inside it."""
    n = rng.randint(2, 4)
    titles = rng.sample(SECTIONS, n)
    words = rng.sample(WORDS, 2 * n)
    buttons = [words[2 * s:2 * s + 2] for s in range(n)]
    s, j = rng.randrange(n), rng.randrange(2)
    return ({"sections": titles, "buttons": buttons, "target": [s, j]},
            f'Expand the section "{titles[s]}" and click "{buttons[s][j]}".',
            [click(3 * s + 1), click(3 * s + 2 + j)], [click(3 * s + 1), click(3 * s + 3 - j)])


@_kind("click-dialog")
def _click_dialog(rng: random.Random) -> tuple:
    """Answer a modal dialog (the page behind it is covered)."""
    buttons = list(rng.choice(DIALOGS))
    verb = rng.choice(["Delete the file", "Share the file", "Archive the file", "Rename the file"])
    message = f'{verb} "{rng.choice(WORDS)}.txt"?'
    t = rng.randint(0, len(buttons))  # 0 = the Close (×) button
    label = "Close (×)" if t == 0 else buttons[t - 1]
    wrong = _other(rng, len(buttons) + 1, t)
    return ({"message": message, "background": rng.sample(WORDS, 2), "buttons": buttons,
             "target": t},
            f'A dialog asks: {message} Answer it by clicking "{label}".',
            [click(3 + t)], [click(3 + wrong)])


@_kind("click-color")
def _click_color(rng: random.Random) -> tuple:
    """Click the swatch of a named colour."""
    names = rng.sample(COLOURS, rng.randint(4, 7))
    colours = [[f"{name} #{rng.randrange(1 << 24):06x}"] for name in names]
    for c in colours:
        c.append(c[0].split()[1])
    t = rng.randrange(len(colours))
    return ({"colors": colours, "target": t}, f"Click the {colours[t][0]} swatch.",
            [click(t + 1)], [click(_other(rng, len(colours), t) + 1)])


@_kind("scroll-to-click")
def _scroll_to_click(rng: random.Random) -> tuple:
    """Scroll down a 30-row list to a button below the fold and click it."""
    labels = rng.sample(WORDS, 30)
    notes = [f"Item {rng.randint(100, 999)}, {rng.choice(['in stock', 'sold out', 'on order'])}"
             for _ in labels]
    t = rng.randint(15, 29)
    return ({"labels": labels, "notes": notes, "target": t},
            f'Scroll down to the button "{labels[t]}" and click it.',
            [scroll("down")] * scrolls_to_row(t, len(labels)) + [click(t + 1)], [click(1)])


def scrolls_to_row(row: int, n_rows: int) -> int:
    """How many ``scroll('down')`` bring row ``row``'s centre well inside the viewport.

    The page (scroll-to-click.html) has a 100 px header, 48 px rows and a 100 px footer.
    """
    centre = 100 + 48 * row + 24
    bottom = max(0, 100 + 48 * n_rows + 100 - VIEW_HEIGHT)
    for k in range(20):
        if 40 <= centre - min(SCROLL_STEP * k, bottom) <= VIEW_HEIGHT - 40:
            return k
    raise ValueError(f"row {row} cannot be scrolled into view")


@_kind("navigate-site")
def _navigate_site(rng: random.Random) -> tuple:
    """Open a section of a small site that no link leads to, and buy a plan there."""
    plans = rng.sample(PLANS, rng.randint(3, 5))
    prices = sorted(rng.sample(range(3, 99), len(plans)))
    t = rng.randrange(len(plans))
    return ({"plans": plans, "prices": prices, "target": t},
            f'Open the pricing page (/navigate-site.html#pricing) and buy the "{plans[t]}" '
            f"plan, which costs {prices[t]} EUR per month.",
            [goto("/navigate-site.html#pricing"), click(4 + t)],
            [goto("/navigate-site.html#pricing"), click(4 + _other(rng, len(plans), t))])


# ------------------------------------------------------------------- forms
@_kind("choose-list")
def _choose_list(rng: random.Random) -> tuple:
    """Pick an option of a drop-down list, then submit."""
    label = rng.choice(sorted(LISTS))
    options = rng.sample(LISTS[label], rng.randint(4, 8))
    t = rng.randrange(len(options))
    other = options[_other(rng, len(options), t)]
    return ({"label": label, "options": options, "target": t},
            f'Select "{options[t]}" from the {label} list and click Submit.',
            [type_(1, options[t]), click(2)], [type_(1, other), click(2)])


@_kind("enter-text")
def _enter_text(rng: random.Random) -> tuple:
    """Type a given phrase into a field, then submit."""
    want, other = (" ".join(rng.sample(WORDS, 2)) for _ in range(2))
    return ({"want": want}, f'Enter "{want}" into the text field and click Submit.',
            [type_(1, want), click(2)], [type_(1, other), click(2)],
            {"type the instruction, not the text": [type_(1, f"Enter {want}"), click(2)]})


@_kind("enter-text-2")
def _enter_text_2(rng: random.Random) -> tuple:
    """Type a word in upper or lower case, then submit."""
    word, case = rng.choice(WORDS).capitalize(), rng.choice(["upper", "lower"])
    want = word.upper() if case == "upper" else word.lower()
    return ({"word": word, "case": case},
            f'Type "{word}" in {case}-case letters into the answer field and click Submit.',
            [type_(1, want), click(2)], [type_(1, word), click(2)])


@_kind("enter-text-enter")
def _enter_text_enter(rng: random.Random) -> tuple:
    """Type into a search box that has no button: Enter submits."""
    want = rng.choice(WORDS)
    return ({"want": want}, f'Search for "{want}": type it into the search box and press Enter.',
            [type_(1, want), press("Enter")], [type_(1, want)])


@_kind("enter-password")
def _enter_password(rng: random.Random) -> tuple:
    """Type the same password into two fields, then submit."""
    pw = _secret(rng, 8)
    return ({"password": pw}, f'Enter the password "{pw}" into both fields and click Submit.',
            [type_(1, pw), type_(2, pw), click(3)], [type_(1, pw), type_(2, pw + "x"), click(3)])


@_kind("login-user")
def _login_user(rng: random.Random) -> tuple:
    """Log in with a username and password."""
    user = rng.choice(FIRST).lower() + str(rng.randint(1, 99))
    pw = _secret(rng, 7)
    return ({"username": user, "password": pw},
            f'Log in with username "{user}" and password "{pw}".',
            [type_(1, user), type_(2, pw), click(3)],
            [type_(1, user), type_(2, pw + "0"), click(3)])


@_kind("copy-text")
def _copy_text(rng: random.Random) -> tuple:
    """Copy a code that only the page shows into a field, then confirm."""
    code = f"{_secret(rng, 3).upper()}-{rng.randint(100, 999)}"
    booking = f"{rng.choice(string.ascii_uppercase)}{rng.randint(1000, 9999)}"
    return ({"code": code, "booking": booking},
            f"Copy the confirmation code of booking {booking}, shown on the page, into the "
            "Code field and click Confirm.",
            [type_(1, code), click(2)], [type_(1, code[:-1]), click(2)])


@_kind("simple-arithmetic")
def _simple_arithmetic(rng: random.Random) -> tuple:
    """Solve the sum the page shows and submit the answer."""
    a, b, op = rng.randint(2, 99), rng.randint(2, 99), rng.choice("+-*")
    value = a + b if op == "+" else a - b if op == "-" else a * b
    exercise = rng.randint(100, 999)
    return ({"a": a, "b": b, "op": op, "exercise": exercise},
            f"Solve exercise {exercise} shown on the page and submit the answer.",
            [type_(1, str(value)), click(2)], [type_(1, str(value + 1)), click(2)])


@_kind("use-slider")
def _use_slider(rng: random.Random) -> tuple:
    """Set a slider to a value, then submit."""
    start, want = rng.sample(range(0, 101), 2)
    near = want + 1 if want < 100 else want - 1
    return ({"min": 0, "max": 100, "start": start, "want": want},
            f"Move the slider from {start} to {want} and click Submit.",
            [type_(1, str(want)), click(2)], [type_(1, str(near)), click(2)])


@_kind("use-spinner")
def _use_spinner(rng: random.Random) -> tuple:
    """Set a number field to a value, then submit."""
    start, want = rng.sample(range(1, 100), 2)
    near = want + 1 if want < 99 else want - 1
    return ({"min": 1, "max": 99, "start": start, "want": want},
            f"Change the quantity from {start} to {want} and click Submit.",
            [type_(1, str(want)), click(2)], [type_(1, str(near)), click(2)])


@_kind("counter")
def _counter(rng: random.Random) -> tuple:
    """Step a counter with + and − buttons to a value, then submit."""
    start = rng.randint(0, 20)
    delta = rng.choice([d for d in range(-5, 6) if d])
    button = click(2 if delta > 0 else 1)
    return ({"start": start, "want": start + delta},
            f"The counter shows {start}. Make it show {start + delta}, then click Submit.",
            [button] * abs(delta) + [click(3)], [button] * (abs(delta) - 1) + [click(3)])


@_kind("use-date-picker")
def _use_date_picker(rng: random.Random) -> tuple:
    """Page a calendar to the right month, pick a day, then submit."""
    year, month = rng.randint(2015, 2030), rng.randrange(12)
    delta = rng.randint(-2, 2)
    ty, tm = year + (month + delta) // 12, (month + delta) % 12
    days = calendar.monthrange(ty, tm + 1)[1]
    day = rng.randint(1, days)
    first = (datetime.date(ty, tm + 1, 1).weekday() + 1) % 7  # Sunday = 0, like JS getDay()
    pager = [click(2 if delta > 0 else 1)] * abs(delta)
    other = day + 1 if day < days else day - 1
    date = datetime.date(ty, tm + 1, day)
    return ({"year": year, "month": month, "want": [ty, tm, day]},
            f"Select {date:%B} {day}, {ty} in the date picker and click Submit.",
            [*pager, click(3 + first + day - 1), click(45)],
            [*pager, click(3 + first + other - 1), click(45)])


@_kind("form-fill")
def _form_fill(rng: random.Random) -> tuple:
    """Fill in a sign-up form (two fields, a list, a checkbox), then submit."""
    first, last = rng.choice(FIRST), rng.choice(LAST)
    email = f"{first.lower()}.{last.lower()}{rng.randint(1, 99)}@example.com"
    cities = rng.sample(["Berlin", "Lisbon", "Oslo", "Paris", "Prague", "Rome", "Vienna", "Warsaw"],
                        5)
    c, news = rng.randrange(5), rng.random() < 0.5
    steps = [type_(1, f"{first} {last}"), type_(2, email), type_(3, cities[c])]
    tick = [click(4)] if news else []
    wish = f", and {'' if news else 'do not '}subscribe to the newsletter"
    return ({"name": f"{first} {last}", "email": email, "cities": cities, "city": c,
             "newsletter": news},
            f'Sign up with the name "{first} {last}", the email {email}, the city {cities[c]}'
            f"{wish}.",
            [*steps, *tick, click(5)], [*steps, *([] if news else [click(4)]), click(5)])
