"""Build toolgym's SQLite databases (shop, university, library, airline) from seeded RNGs.

    usage: python3 build_databases.py OUTDIR

writes ``OUTDIR/<name>.db`` (what the agent queries), ``OUTDIR/variant/<name>.db``
(same schema, other rows and sizes; only the verifier reads it, so an answer
that hard-codes the result it saw scores 0) and ``OUTDIR/GENERATOR_SHA256``
(the sha256 of this file, which the host compares with its own copy to detect
a stale image).

This file is the single source of the data: the image build runs it (so the
image hash covers it) and the host imports it to draw question parameters and
check gold queries (``toolgym/envs/sql/databases.py``). Standard library only,
and deterministic across Python versions: every draw goes through
``random.Random.random()``, whose output for a given seed is stable.
"""

from __future__ import annotations

import datetime
import hashlib
import random
import sqlite3
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

NAMES = ("shop", "university", "library", "airline")
MAIN_SEED = 0
VARIANT_SEED = 1

FIRST = ("Ada", "Ben", "Chloe", "David", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas",
         "Kira", "Liam", "Maya", "Noah", "Olga", "Pablo", "Quinn", "Rosa", "Sami", "Tara",
         "Umar", "Vera", "Wen", "Xavier", "Yara", "Zoe", "Amir", "Bianca", "Carlos", "Dana",
         "Emil", "Fatima", "Goran", "Hana", "Ivan", "Julia", "Kenji", "Lena", "Marco", "Nina")
LAST = ("Adams", "Baker", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Hansen", "Ito",
        "Jensen", "Kowalski", "Lopez", "Muller", "Novak", "Okafor", "Petrov", "Quist", "Rossi",
        "Silva", "Tanaka", "Ueda", "Varga", "Weber", "Xu", "Yilmaz", "Zhang", "Andersen",
        "Bauer", "Chen", "Dias", "Evans", "Ferrari", "Gomez", "Horvat", "Ivanova", "Kim")
PLACES = (("Lisbon", "Portugal"), ("Porto", "Portugal"), ("Madrid", "Spain"), ("Seville", "Spain"),
          ("Paris", "France"), ("Lyon", "France"), ("Berlin", "Germany"), ("Munich", "Germany"),
          ("Rome", "Italy"), ("Milan", "Italy"), ("Vienna", "Austria"), ("Warsaw", "Poland"),
          ("Oslo", "Norway"), ("Tokyo", "Japan"), ("Osaka", "Japan"), ("Toronto", "Canada"),
          ("Chicago", "USA"), ("Boston", "USA"), ("Lagos", "Nigeria"), ("Nairobi", "Kenya"))


class Rng:
    """Seeded draws built on ``random()`` alone (stable across Python versions)."""

    def __init__(self, seed: int) -> None:
        self._r = random.Random(seed)

    def random(self) -> float:
        return self._r.random()

    def int(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi]."""
        return lo + min(int(self._r.random() * (hi - lo + 1)), hi - lo)

    def choice(self, seq: Sequence) -> object:
        return seq[self.int(0, len(seq) - 1)]

    def weighted(self, seq: Sequence, weights: Sequence[float]) -> object:
        x = self._r.random() * sum(weights)
        for item, w in zip(seq, weights, strict=True):
            if x < w:
                return item
            x -= w
        return seq[-1]

    def sample(self, seq: Sequence, k: int) -> list:
        pool = list(seq)
        return [pool.pop(self.int(0, len(pool) - 1)) for _ in range(min(k, len(pool)))]

    def money(self, lo: float, hi: float) -> float:
        return round(lo + self._r.random() * (hi - lo), 2)

    def day(self, start: str, span_days: int) -> str:
        base = datetime.date.fromisoformat(start)
        return (base + datetime.timedelta(days=self.int(0, span_days))).isoformat()

    def person(self) -> str:
        return f"{self.choice(FIRST)} {self.choice(LAST)}"


def _later(day: str, lo: int, hi: int, rng: Rng) -> str:
    return (datetime.date.fromisoformat(day) + datetime.timedelta(days=rng.int(lo, hi))).isoformat()


# ─── shop ─────────────────────────────────────────────────────────────────
SHOP_SCHEMA = """
CREATE TABLE categories (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
  parent_id INTEGER REFERENCES categories(id));
CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
  category_id INTEGER NOT NULL REFERENCES categories(id), price REAL NOT NULL,
  stock INTEGER NOT NULL);
CREATE TABLE customers (id INTEGER PRIMARY KEY, first_name TEXT NOT NULL, last_name TEXT NOT NULL,
  email TEXT NOT NULL UNIQUE, city TEXT NOT NULL, country TEXT NOT NULL, joined_on TEXT NOT NULL);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id),
  ordered_on TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'shipped', 'delivered', 'cancelled')));
CREATE TABLE order_items (order_id INTEGER NOT NULL REFERENCES orders(id),
  product_id INTEGER NOT NULL REFERENCES products(id), quantity INTEGER NOT NULL,
  unit_price REAL NOT NULL, PRIMARY KEY (order_id, product_id));
CREATE TABLE reviews (id INTEGER PRIMARY KEY, product_id INTEGER NOT NULL REFERENCES products(id),
  customer_id INTEGER NOT NULL REFERENCES customers(id),
  rating INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5), reviewed_on TEXT NOT NULL);
"""
SHOP_CATEGORIES = {
    "Electronics": ("Phones", "Laptops", "Audio", "Cameras"),
    "Home": ("Kitchen", "Furniture", "Lighting"),
    "Sports": ("Cycling", "Running", "Camping"),
    "Books": ("Fiction", "Science", "Cooking"),
    "Toys": ("Puzzles", "Board Games"),
    "Garden": ("Tools", "Plants"),
}
ADJECTIVES = ("Compact", "Classic", "Deluxe", "Eco", "Ultra", "Smart", "Rugged", "Mini", "Pro",
              "Vintage", "Light", "Prime", "Nova", "Swift", "Solid")
NOUNS = {"Phones": "Phone", "Laptops": "Laptop", "Audio": "Speaker", "Cameras": "Camera",
         "Kitchen": "Blender", "Furniture": "Chair", "Lighting": "Lamp", "Cycling": "Helmet",
         "Running": "Shoe", "Camping": "Tent", "Fiction": "Novel", "Science": "Atlas",
         "Cooking": "Cookbook", "Puzzles": "Puzzle", "Board Games": "Board Game",
         "Tools": "Spade", "Plants": "Fern"}
PRICE = {"Electronics": (49, 1500), "Home": (15, 600), "Sports": (10, 450), "Books": (8, 60),
         "Toys": (6, 90), "Garden": (5, 120)}


def build_shop(db: sqlite3.Connection, rng: Rng) -> None:
    tops = rng.sample(list(SHOP_CATEGORIES), rng.int(4, 6))
    categories, leaves = [], []
    for top in tops:
        categories.append((len(categories) + 1, top, None))
        parent = len(categories)
        subs = rng.sample(SHOP_CATEGORIES[top], rng.int(2, len(SHOP_CATEGORIES[top])))
        for sub in subs:
            categories.append((len(categories) + 1, sub, parent))
            leaves.append((len(categories), sub, top))
    products, seen = [], set()
    for _ in range(rng.int(150, 220)):
        cid, sub, top = rng.choice(leaves)
        name = f"{rng.choice(ADJECTIVES)} {NOUNS[sub]} {rng.int(1, 9) * 100}"
        if name in seen:
            continue
        seen.add(name)
        products.append((len(products) + 1, name, cid, rng.money(*PRICE[top]), rng.int(0, 250)))
    customers = []
    for i in range(1, rng.int(400, 560) + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        city, country = rng.choice(PLACES)
        email = f"{first.lower()}.{last.lower()}{i}@example.com"
        customers.append((i, first, last, email, city, country, rng.day("2019-01-01", 1800)))
    orders, items, reviews = [], [], []
    for i in range(1, rng.int(1800, 2400) + 1):
        customer = rng.choice(customers)
        day = _later(customer[6], 0, 1500, rng)
        status = rng.weighted(("pending", "shipped", "delivered", "cancelled"), (1, 2, 6, 1))
        orders.append((i, customer[0], day, status))
        first_item = len(items)
        for product in rng.sample(products, rng.weighted((1, 2, 3, 4), (5, 3, 2, 1))):
            price = product[3] if rng.random() < 0.8 else round(product[3] * 0.9, 2)
            items.append((i, product[0], rng.weighted((1, 2, 3, 5), (8, 3, 1, 1)), price))
        if status == "delivered" and rng.random() < 0.4:
            product = rng.choice(items[first_item:])
            rating = rng.weighted((1, 2, 3, 4, 5), (1, 1, 2, 4, 4))
            reviews.append((len(reviews) + 1, product[1], customer[0], rating,
                            _later(day, 3, 60, rng)))
    _insert(db, "categories", categories)
    _insert(db, "products", products)
    _insert(db, "customers", customers)
    _insert(db, "orders", orders)
    _insert(db, "order_items", items)
    _insert(db, "reviews", reviews)


# ─── university ───────────────────────────────────────────────────────────
UNIVERSITY_SCHEMA = """
CREATE TABLE departments (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
  building TEXT NOT NULL, budget INTEGER NOT NULL);
CREATE TABLE instructors (id INTEGER PRIMARY KEY, name TEXT NOT NULL,
  department_id INTEGER NOT NULL REFERENCES departments(id), salary INTEGER NOT NULL,
  hired_year INTEGER NOT NULL);
CREATE TABLE students (id INTEGER PRIMARY KEY, name TEXT NOT NULL,
  department_id INTEGER NOT NULL REFERENCES departments(id), enrolled_year INTEGER NOT NULL,
  home_city TEXT NOT NULL);
CREATE TABLE courses (id INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE, title TEXT NOT NULL,
  department_id INTEGER NOT NULL REFERENCES departments(id), credits INTEGER NOT NULL);
CREATE TABLE sections (id INTEGER PRIMARY KEY, course_id INTEGER NOT NULL REFERENCES courses(id),
  instructor_id INTEGER NOT NULL REFERENCES instructors(id), term TEXT NOT NULL,
  capacity INTEGER NOT NULL);
CREATE TABLE enrollments (student_id INTEGER NOT NULL REFERENCES students(id),
  section_id INTEGER NOT NULL REFERENCES sections(id),
  grade TEXT CHECK (grade IN ('A', 'B', 'C', 'D', 'F')), PRIMARY KEY (student_id, section_id));
"""
DEPARTMENTS = {
    "Computer Science": ("CS", ("Algorithms", "Databases", "Operating Systems", "Compilers",
                                "Machine Learning", "Networks", "Security")),
    "Mathematics": ("MATH", ("Calculus", "Linear Algebra", "Probability", "Topology",
                             "Number Theory", "Statistics")),
    "Physics": ("PHYS", ("Mechanics", "Electromagnetism", "Quantum Physics", "Optics",
                         "Thermodynamics")),
    "History": ("HIST", ("Ancient Rome", "Medieval Europe", "Modern Asia", "World Wars")),
    "Biology": ("BIO", ("Genetics", "Ecology", "Cell Biology", "Microbiology", "Evolution")),
    "Economics": ("ECON", ("Microeconomics", "Macroeconomics", "Econometrics", "Game Theory")),
    "Philosophy": ("PHIL", ("Logic", "Ethics", "Metaphysics")),
    "Chemistry": ("CHEM", ("Organic Chemistry", "Biochemistry", "Physical Chemistry")),
}
BUILDINGS = ("North Hall", "South Hall", "Newton Building", "Curie Centre", "Library Wing")
TERMS = ("2022-fall", "2023-spring", "2023-fall", "2024-spring", "2024-fall")


def build_university(db: sqlite3.Connection, rng: Rng) -> None:
    names = rng.sample(list(DEPARTMENTS), rng.int(6, 8))
    departments = [(i, n, rng.choice(BUILDINGS), rng.int(20, 150) * 10_000)
                   for i, n in enumerate(names, start=1)]
    instructors = [(i, rng.person(), rng.int(1, len(departments)), rng.int(55, 160) * 1000,
                    rng.int(1995, 2023)) for i in range(1, rng.int(50, 70) + 1)]
    students = [(i, rng.person(), rng.int(1, len(departments)), rng.int(2019, 2024),
                 rng.choice(PLACES)[0]) for i in range(1, rng.int(650, 850) + 1)]
    courses = []
    for dept_id, name, _, _ in departments:
        prefix, titles = DEPARTMENTS[name]
        for title in rng.sample(titles, rng.int(3, len(titles))):
            for level in rng.sample((101, 201, 301, 401), rng.int(1, 3)):
                code = f"{prefix}{level + rng.int(0, 9)}"
                if all(c[1] != code for c in courses):
                    courses.append((len(courses) + 1, code, f"{title} {level // 100}", dept_id,
                                    rng.choice((3, 4, 5, 6))))
    by_dept: dict[int, list[int]] = {}
    for ins in instructors:
        by_dept.setdefault(ins[2], []).append(ins[0])
    everyone = [ins[0] for ins in instructors]
    sections = []
    for course in courses:
        for term in rng.sample(TERMS, rng.int(1, 4)):
            teacher = rng.choice(by_dept.get(course[3], everyone))
            sections.append((len(sections) + 1, course[0], teacher, term, rng.int(2, 8) * 10))
    enrollments = []
    for student in students:
        open_terms = [t for t in TERMS if int(t[:4]) >= student[3] - 1]
        mine = [s for s in sections if s[3] in open_terms]
        for section in rng.sample(mine, rng.int(2, 9)):
            graded = section[3] != TERMS[-1]
            grade = rng.weighted("ABCDF", (3, 4, 3, 1, 1)) if graded else None
            enrollments.append((student[0], section[0], grade))
    _insert(db, "departments", departments)
    _insert(db, "instructors", instructors)
    _insert(db, "students", students)
    _insert(db, "courses", courses)
    _insert(db, "sections", sections)
    _insert(db, "enrollments", enrollments)


# ─── library ──────────────────────────────────────────────────────────────
LIBRARY_SCHEMA = """
CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT NOT NULL, country TEXT NOT NULL,
  birth_year INTEGER NOT NULL);
CREATE TABLE genres (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE books (id INTEGER PRIMARY KEY, title TEXT NOT NULL,
  author_id INTEGER NOT NULL REFERENCES authors(id),
  genre_id INTEGER NOT NULL REFERENCES genres(id), published_year INTEGER NOT NULL,
  pages INTEGER NOT NULL);
CREATE TABLE branches (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, city TEXT NOT NULL);
CREATE TABLE copies (id INTEGER PRIMARY KEY, book_id INTEGER NOT NULL REFERENCES books(id),
  branch_id INTEGER NOT NULL REFERENCES branches(id), acquired_year INTEGER NOT NULL);
CREATE TABLE members (id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT NOT NULL,
  joined_on TEXT NOT NULL);
CREATE TABLE loans (id INTEGER PRIMARY KEY, copy_id INTEGER NOT NULL REFERENCES copies(id),
  member_id INTEGER NOT NULL REFERENCES members(id), loaned_on TEXT NOT NULL,
  due_on TEXT NOT NULL, returned_on TEXT);
"""
GENRES = ("Mystery", "Fantasy", "Science Fiction", "Romance", "History", "Biography", "Poetry",
          "Horror", "Travel", "Philosophy", "Children", "Thriller", "Drama", "Humor")
TITLE_A = ("The Silent", "A Distant", "The Last", "Beyond the", "The Hidden", "Under the",
           "The Broken", "Return of the", "The Secret", "Shadows of the", "The Golden", "Winter")
TITLE_B = ("River", "Garden", "Empire", "Lighthouse", "Mountain", "Letter", "Harbor", "Forest",
           "Machine", "Kingdom", "Island", "Station", "Orchard", "Clock", "Desert", "Bridge")
BRANCHES = ("Central", "Riverside", "Old Town", "Hillside", "Harbor", "University", "Westgate")


def build_library(db: sqlite3.Connection, rng: Rng) -> None:
    authors = []
    for i in range(1, rng.int(120, 170) + 1):
        authors.append((i, rng.person(), rng.choice(PLACES)[1], rng.int(1900, 1995)))
    genres = [(i, g) for i, g in enumerate(rng.sample(GENRES, rng.int(9, 14)), start=1)]
    books, seen = [], set()
    for _ in range(rng.int(500, 650)):
        title = f"{rng.choice(TITLE_A)} {rng.choice(TITLE_B)}"
        author = rng.choice(authors)
        if title in seen:
            title = f"{title} {rng.choice(('II', 'III', 'Revisited', 'Returns'))}"
        if title in seen:
            continue
        seen.add(title)
        books.append((len(books) + 1, title, author[0], rng.int(1, len(genres)),
                      rng.int(max(author[3] + 20, 1950), 2024), rng.int(8, 90) * 10))
    branches = [(i, n, rng.choice(PLACES[:6])[0])
                for i, n in enumerate(rng.sample(BRANCHES, rng.int(4, 7)), start=1)]
    copies = []
    for book in books:
        for _ in range(rng.weighted((1, 2, 3, 4), (4, 4, 2, 1))):
            copies.append((len(copies) + 1, book[0], rng.int(1, len(branches)),
                           rng.int(max(book[4], 2000), 2024)))
    members = [(i, rng.person(), rng.choice(PLACES[:6])[0], rng.day("2015-01-01", 3000))
               for i in range(1, rng.int(550, 750) + 1)]
    loans = []
    for i in range(1, rng.int(3500, 4500) + 1):
        copy, member = rng.choice(copies), rng.choice(members)
        day = rng.day("2022-01-01", 900)
        returned = _later(day, 1, 40, rng) if rng.random() < 0.85 else None
        loans.append((i, copy[0], member[0], day, _later(day, 21, 21, rng), returned))
    _insert(db, "authors", authors)
    _insert(db, "genres", genres)
    _insert(db, "books", books)
    _insert(db, "branches", branches)
    _insert(db, "copies", copies)
    _insert(db, "members", members)
    _insert(db, "loans", loans)


# ─── airline ──────────────────────────────────────────────────────────────
AIRLINE_SCHEMA = """
CREATE TABLE airports (code TEXT PRIMARY KEY, name TEXT NOT NULL, city TEXT NOT NULL,
  country TEXT NOT NULL);
CREATE TABLE airlines (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, country TEXT NOT NULL);
CREATE TABLE aircraft (id INTEGER PRIMARY KEY, model TEXT NOT NULL, seats INTEGER NOT NULL,
  airline_id INTEGER NOT NULL REFERENCES airlines(id));
CREATE TABLE flights (id INTEGER PRIMARY KEY, flight_no TEXT NOT NULL,
  airline_id INTEGER NOT NULL REFERENCES airlines(id),
  origin TEXT NOT NULL REFERENCES airports(code),
  destination TEXT NOT NULL REFERENCES airports(code),
  aircraft_id INTEGER NOT NULL REFERENCES aircraft(id), departs_at TEXT NOT NULL,
  duration_min INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('scheduled', 'arrived', 'delayed', 'cancelled')));
CREATE TABLE passengers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, nationality TEXT NOT NULL,
  birth_year INTEGER NOT NULL);
CREATE TABLE bookings (id INTEGER PRIMARY KEY, flight_id INTEGER NOT NULL REFERENCES flights(id),
  passenger_id INTEGER NOT NULL REFERENCES passengers(id),
  seat_class TEXT NOT NULL CHECK (seat_class IN ('economy', 'business', 'first')),
  price REAL NOT NULL, booked_on TEXT NOT NULL);
"""
AIRPORTS = (("LIS", "Humberto Delgado", "Lisbon", "Portugal"), ("OPO", "Francisco Sa Carneiro",
            "Porto", "Portugal"), ("MAD", "Barajas", "Madrid", "Spain"), ("SVQ", "San Pablo",
            "Seville", "Spain"), ("CDG", "Charles de Gaulle", "Paris", "France"),
            ("LYS", "Saint-Exupery", "Lyon", "France"), ("BER", "Brandenburg", "Berlin",
            "Germany"), ("MUC", "Franz Josef Strauss", "Munich", "Germany"), ("FCO", "Fiumicino",
            "Rome", "Italy"), ("MXP", "Malpensa", "Milan", "Italy"), ("VIE", "Schwechat",
            "Vienna", "Austria"), ("WAW", "Chopin", "Warsaw", "Poland"), ("OSL", "Gardermoen",
            "Oslo", "Norway"), ("HND", "Haneda", "Tokyo", "Japan"), ("KIX", "Kansai", "Osaka",
            "Japan"), ("YYZ", "Pearson", "Toronto", "Canada"), ("ORD", "O'Hare", "Chicago", "USA"),
            ("BOS", "Logan", "Boston", "USA"), ("LOS", "Murtala Muhammed", "Lagos", "Nigeria"),
            ("NBO", "Jomo Kenyatta", "Nairobi", "Kenya"))
AIRLINES = (("Atlantic Air", "Portugal", "AT"), ("Iberic Wings", "Spain", "IW"),
            ("Alpine Jet", "Austria", "AJ"), ("Nordic Sky", "Norway", "NS"),
            ("Sakura Airways", "Japan", "SA"), ("Maple Air", "Canada", "MA"),
            ("Savanna Express", "Kenya", "SE"), ("Lakeshore Airlines", "USA", "LA"),
            ("Rhine Connect", "Germany", "RC"))
MODELS = (("A320", 180), ("A321", 220), ("B737", 175), ("B787", 290), ("A350", 320),
          ("E190", 100), ("ATR72", 70))


def build_airline(db: sqlite3.Connection, rng: Rng) -> None:
    airports = rng.sample(AIRPORTS, rng.int(15, 20))
    picked = rng.sample(AIRLINES, rng.int(6, 9))
    airlines = [(i, name, country) for i, (name, country, _) in enumerate(picked, start=1)]
    aircraft = []
    for airline_id in range(1, len(airlines) + 1):
        for _ in range(rng.int(2, 5)):
            model, seats = rng.choice(MODELS)
            aircraft.append((len(aircraft) + 1, model, seats, airline_id))
    flights = []
    for i in range(1, rng.int(1200, 1600) + 1):
        plane = rng.choice(aircraft)
        origin, destination = (a[0] for a in rng.sample(airports, 2))
        code = picked[plane[3] - 1][2]
        departs = f"{rng.day('2024-01-01', 364)} {rng.int(5, 22):02d}:{rng.int(0, 11) * 5:02d}"
        status = rng.weighted(("arrived", "delayed", "cancelled", "scheduled"), (12, 3, 1, 4))
        flights.append((i, f"{code}{rng.int(100, 999)}", plane[3], origin, destination, plane[0],
                        departs, rng.int(50, 780), status))
    passengers = [(i, rng.person(), rng.choice(PLACES)[1], rng.int(1940, 2010))
                  for i in range(1, rng.int(850, 1150) + 1)]
    bookings = []
    for i in range(1, rng.int(5000, 6500) + 1):
        flight = rng.choice(flights)
        seat = rng.weighted(("economy", "business", "first"), (16, 4, 1))
        base = flight[7] * {"economy": 0.25, "business": 0.8, "first": 1.6}[seat]
        bookings.append((i, flight[0], rng.int(1, len(passengers)), seat,
                         round(base * (0.7 + rng.random() * 0.8) + 20, 2),
                         _later(flight[6][:10], -120, -1, rng)))
    _insert(db, "airports", [tuple(a) for a in airports])
    _insert(db, "airlines", airlines)
    _insert(db, "aircraft", aircraft)
    _insert(db, "flights", flights)
    _insert(db, "passengers", passengers)
    _insert(db, "bookings", bookings)


# ─── building ─────────────────────────────────────────────────────────────
SCHEMAS: dict[str, str] = {"shop": SHOP_SCHEMA, "university": UNIVERSITY_SCHEMA,
                           "library": LIBRARY_SCHEMA, "airline": AIRLINE_SCHEMA}
BUILDERS: dict[str, Callable[[sqlite3.Connection, Rng], None]] = {
    "shop": build_shop, "university": build_university, "library": build_library,
    "airline": build_airline}


def _insert(db: sqlite3.Connection, table: str, rows: list[tuple]) -> None:
    marks = ", ".join("?" * len(rows[0]))
    db.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)


def build(db: sqlite3.Connection, name: str, seed: int = MAIN_SEED) -> sqlite3.Connection:
    """Create database ``name``'s tables in ``db`` and fill them from ``seed``; return ``db``."""
    db.executescript("PRAGMA foreign_keys = ON;" + SCHEMAS[name])
    with db:
        BUILDERS[name](db, Rng(seed * 1009 + NAMES.index(name)))
    problems = db.execute("PRAGMA foreign_key_check").fetchall()
    if problems:
        raise RuntimeError(f"{name}: rows break foreign keys: {problems[:5]}")
    return db


def generator_sha256() -> str:
    """The sha256 of this file: the identity of the data it builds."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def main(outdir: str) -> None:
    out = Path(outdir)
    (out / "variant").mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        for path, seed in ((out / f"{name}.db", MAIN_SEED),
                           (out / "variant" / f"{name}.db", VARIANT_SEED)):
            path.unlink(missing_ok=True)
            db = build(sqlite3.connect(path), name, seed)
            db.execute("VACUUM")
            db.close()
    (out / "GENERATOR_SHA256").write_text(generator_sha256() + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/data")
