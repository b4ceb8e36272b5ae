"""Question templates over the four databases: a question, its gold SQL and a plausible wrong SQL.

Levels: 1 one table (filters, counts, top-n); 2 joins; 3 aggregation and
grouping; 4 nested queries (``NOT IN``, correlated subqueries). ``{name}``
placeholders are filled from ``params``: each maps a name (or several,
comma-separated) to a SQL query listing candidate values (the first column(s)
of its rows) or to a tuple of literal values. In the SQL a placeholder becomes
a quoted literal, in the question the plain value. ``order_col`` is set for
questions whose answer is ordered: the index of the output column the order
is by, used to reject instances with ties (whose order would be arbitrary).
The wrong SQL is what a careless agent writes: ``>=`` for ``>``, a join on the
wrong key, a missing filter, the global average instead of the group's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

Params = Mapping[str, str | tuple[object, ...]]


@dataclass(frozen=True)
class Template:
    """One kind of question on one database."""

    name: str
    db: str
    level: int
    question: str
    gold: str
    wrong: str
    params: Params = field(default_factory=dict)
    order_col: int | None = None
    """Set iff the gold query ends in ORDER BY: its output column the order is by."""


def _t(db: str, name: str, level: int, question: str, gold: str, wrong: str,
       params: Params | None = None, order_col: int | None = None) -> Template:
    return Template(name, db, level, question, " ".join(gold.split()), " ".join(wrong.split()),
                    dict(params or {}), order_col)


_ITEMS = ("FROM customers c JOIN orders o ON o.customer_id = c.id "
          "JOIN order_items i ON i.order_id = o.id")
_EMAIL_3_ORDERS = ("SELECT c.email FROM customers c JOIN orders o ON o.customer_id = c.id "
                   "GROUP BY c.id HAVING COUNT(*) >= 3 ORDER BY c.id")

SHOP = [
    _t("shop", "customers_in_city", 1, "How many customers live in {city}?",
       "SELECT COUNT(*) FROM customers WHERE city = {city}",
       "SELECT COUNT(*) FROM customers WHERE country = "
       "(SELECT country FROM customers WHERE city = {city} LIMIT 1)",
       {"city": "SELECT DISTINCT city FROM customers ORDER BY 1"}),
    _t("shop", "products_above_price", 1,
       "List the names of the products that cost more than {price}.",
       "SELECT name FROM products WHERE price > {price}",
       "SELECT name FROM products WHERE price >= {price}",
       {"price": "SELECT price FROM products ORDER BY price DESC LIMIT 25 OFFSET 4"}),
    _t("shop", "cheapest_products", 1,
       "List the {n} cheapest products with their prices, cheapest first.",
       "SELECT name, price FROM products ORDER BY price ASC LIMIT {n}",
       "SELECT name, price FROM products ORDER BY price DESC LIMIT {n}",
       {"n": (3, 5, 8)}, order_col=1),
    _t("shop", "orders_with_status", 1, "How many orders have the status '{status}'?",
       "SELECT COUNT(*) FROM orders WHERE status = {status}",
       "SELECT COUNT(*) FROM orders WHERE status <> {status}",
       {"status": ("pending", "shipped", "delivered", "cancelled")}),
    _t("shop", "customers_joined_in", 1, "How many customers joined in {year}?",
       "SELECT COUNT(*) FROM customers WHERE strftime('%Y', joined_on) = {year}",
       "SELECT COUNT(*) FROM customers WHERE strftime('%Y', joined_on) >= {year}",
       {"year": "SELECT DISTINCT strftime('%Y', joined_on) FROM customers ORDER BY 1"}),
    _t("shop", "orders_of_customer", 2,
       "How many orders has the customer with the email {email} placed?",
       "SELECT COUNT(*) FROM orders o JOIN customers c ON c.id = o.customer_id "
       "WHERE c.email = {email}",
       "SELECT COUNT(*) FROM orders o JOIN customers c ON c.id = o.customer_id "
       "WHERE c.email = {email} AND o.status <> 'cancelled'",
       {"email": _EMAIL_3_ORDERS}),
    _t("shop", "products_in_category", 2,
       "List the names of the products in the category '{category}'.",
       "SELECT p.name FROM products p JOIN categories c ON c.id = p.category_id "
       "WHERE c.name = {category}",
       "SELECT p.name FROM products p JOIN categories c ON c.id = p.id WHERE c.name = {category}",
       {"category": "SELECT c.name FROM categories c JOIN products p ON p.category_id = c.id "
                    "GROUP BY c.id HAVING COUNT(*) <= 25 ORDER BY c.id"}),
    _t("shop", "products_bought_by", 2,
       "List the distinct names of the products bought by the customer with the email {email}.",
       f"SELECT DISTINCT p.name {_ITEMS} JOIN products p ON p.id = i.product_id "
       "WHERE c.email = {email}",
       f"SELECT DISTINCT p.name {_ITEMS} JOIN products p ON p.id = i.product_id "
       "WHERE c.email = {email} AND o.status = 'delivered'",
       {"email": _EMAIL_3_ORDERS}),
    _t("shop", "average_rating_of", 2, "What is the average review rating of '{product}'?",
       "SELECT AVG(r.rating) FROM reviews r JOIN products p ON p.id = r.product_id "
       "WHERE p.name = {product}",
       "SELECT AVG(r.rating) FROM reviews r JOIN products p ON p.id = r.customer_id "
       "WHERE p.name = {product}",
       {"product": "SELECT p.name FROM products p JOIN reviews r ON r.product_id = p.id "
                   "GROUP BY p.id HAVING COUNT(*) >= 4 ORDER BY p.id"}),
    _t("shop", "products_per_category", 3,
       "For each category that has products, give its name and its number of products.",
       "SELECT c.name, COUNT(*) FROM categories c JOIN products p ON p.category_id = c.id "
       "GROUP BY c.id",
       "SELECT c.name, COUNT(*) FROM categories c LEFT JOIN products p ON p.category_id = c.id "
       "GROUP BY c.id"),
    _t("shop", "orders_per_status", 3,
       "For each order status, give the status and the number of orders placed in {year} that "
       "have it.",
       "SELECT status, COUNT(*) FROM orders WHERE strftime('%Y', ordered_on) = {year} "
       "GROUP BY status",
       "SELECT status, COUNT(DISTINCT customer_id) FROM orders "
       "WHERE strftime('%Y', ordered_on) = {year} GROUP BY status",
       {"year": "SELECT DISTINCT strftime('%Y', ordered_on) FROM orders ORDER BY 1"}),
    _t("shop", "top_spenders", 3,
       "Which {n} customers spent the most on delivered orders? Give their email and the total "
       "spent (sum of quantity times unit price), highest first.",
       f"SELECT c.email, SUM(i.quantity * i.unit_price) AS total {_ITEMS} "
       "WHERE o.status = 'delivered' GROUP BY c.id ORDER BY total DESC LIMIT {n}",
       f"SELECT c.email, SUM(i.quantity * i.unit_price) AS total {_ITEMS} "
       "GROUP BY c.id ORDER BY total DESC LIMIT {n}",
       {"n": (3, 4, 5, 6, 8)}, order_col=1),
    _t("shop", "cities_with_customers", 3,
       "Which cities have at least {k} customers? Give each city and its number of customers.",
       "SELECT city, COUNT(*) FROM customers GROUP BY city HAVING COUNT(*) >= {k}",
       "SELECT city, COUNT(*) FROM customers GROUP BY city HAVING COUNT(*) > {k}",
       {"k": "SELECT DISTINCT COUNT(*) FROM customers GROUP BY city ORDER BY 1"}),
    _t("shop", "orders_per_month", 3,
       "How many orders were placed in each month of {year}? Give the month as 'YYYY-MM' and "
       "the number of orders, in chronological order.",
       "SELECT strftime('%Y-%m', ordered_on) AS month, COUNT(*) FROM orders "
       "WHERE strftime('%Y', ordered_on) = {year} GROUP BY month ORDER BY month",
       "SELECT strftime('%Y-%m', ordered_on) AS month, COUNT(*) FROM orders "
       "WHERE strftime('%Y', ordered_on) = {year} GROUP BY month ORDER BY COUNT(*)",
       {"year": "SELECT DISTINCT strftime('%Y', ordered_on) FROM orders ORDER BY 1"},
       order_col=0),
    _t("shop", "never_reviewed", 4,
       "List the names of the products of the category '{category}' that were never reviewed.",
       "SELECT p.name FROM products p JOIN categories c ON c.id = p.category_id "
       "WHERE c.name = {category} AND p.id NOT IN (SELECT product_id FROM reviews)",
       "SELECT p.name FROM products p JOIN categories c ON c.id = p.category_id "
       "WHERE c.name = {category} AND p.id NOT IN (SELECT customer_id FROM reviews)",
       {"category": "SELECT DISTINCT c.name FROM categories c "
                    "JOIN products p ON p.category_id = c.id ORDER BY c.id"}),
    _t("shop", "pricier_than_category_average", 4,
       "Which products of the category '{category}' cost more than the average price of that "
       "category? Give their names.",
       "SELECT p.name FROM products p JOIN categories c ON c.id = p.category_id "
       "WHERE c.name = {category} AND p.price > "
       "(SELECT AVG(price) FROM products WHERE category_id = c.id)",
       "SELECT p.name FROM products p JOIN categories c ON c.id = p.category_id "
       "WHERE c.name = {category} AND p.price > (SELECT AVG(price) FROM products)",
       {"category": "SELECT DISTINCT c.name FROM categories c "
                    "JOIN products p ON p.category_id = c.id ORDER BY c.id"}),
    _t("shop", "customers_without_reviews", 4,
       "How many customers from {city} have never written a review?",
       "SELECT COUNT(*) FROM customers WHERE city = {city} "
       "AND id NOT IN (SELECT customer_id FROM reviews)",
       "SELECT (SELECT COUNT(*) FROM customers WHERE city = {city}) - (SELECT COUNT(*) "
       "FROM reviews r JOIN customers c ON c.id = r.customer_id WHERE c.city = {city})",
       {"city": "SELECT DISTINCT city FROM customers ORDER BY 1"}),
    _t("shop", "busier_than_city_average", 4,
       "List the emails of the customers from {city} who placed more orders than the average "
       "number of orders of the customers from {city} who ordered at all.",
       "SELECT c.email FROM customers c JOIN orders o ON o.customer_id = c.id "
       "WHERE c.city = {city} GROUP BY c.id HAVING COUNT(*) > "
       "(SELECT COUNT(*) * 1.0 / COUNT(DISTINCT o2.customer_id) FROM orders o2 "
       "JOIN customers c2 ON c2.id = o2.customer_id WHERE c2.city = {city})",
       "SELECT c.email FROM customers c JOIN orders o ON o.customer_id = c.id "
       "WHERE c.city = {city} GROUP BY c.id HAVING COUNT(*) > "
       "(SELECT COUNT(*) * 1.0 / (SELECT COUNT(*) FROM customers) FROM orders)",
       {"city": "SELECT DISTINCT city FROM customers ORDER BY 1"}),
]

_ENROLLED = ("FROM enrollments e JOIN sections s ON s.id = e.section_id "
             "JOIN courses c ON c.id = s.course_id")

UNIVERSITY = [
    _t("university", "students_enrolled_in", 1, "How many students enrolled in {year}?",
       "SELECT COUNT(*) FROM students WHERE enrolled_year = {year}",
       "SELECT COUNT(*) FROM students WHERE enrolled_year <= {year}",
       {"year": "SELECT DISTINCT enrolled_year FROM students ORDER BY 1"}),
    _t("university", "instructors_earning_over", 1,
       "List the names and salaries of the instructors who earn more than {salary}.",
       "SELECT name, salary FROM instructors WHERE salary > {salary}",
       "SELECT name, salary FROM instructors WHERE salary >= {salary}",
       {"salary": "SELECT salary FROM instructors ORDER BY salary DESC LIMIT 20 OFFSET 2"}),
    _t("university", "courses_with_credits", 1, "List the codes of the courses worth {credits} "
       "credits.",
       "SELECT code FROM courses WHERE credits = {credits}",
       "SELECT code FROM courses WHERE credits >= {credits}",
       {"credits": (3, 4, 5, 6)}),
    _t("university", "best_paid", 1,
       "List the {n} best-paid instructors with their salaries, highest first.",
       "SELECT name, salary FROM instructors ORDER BY salary DESC LIMIT {n}",
       "SELECT name, salary FROM instructors ORDER BY salary ASC LIMIT {n}",
       {"n": (3, 4, 5, 6)}, order_col=1),
    _t("university", "courses_of_department", 2,
       "List the titles of the courses offered by the {dept} department.",
       "SELECT c.title FROM courses c JOIN departments d ON d.id = c.department_id "
       "WHERE d.name = {dept}",
       "SELECT c.title FROM courses c JOIN departments d ON d.id = c.id WHERE d.name = {dept}",
       {"dept": "SELECT name FROM departments ORDER BY id"}),
    _t("university", "sections_taught", 2,
       "How many sections did instructors of the {dept} department teach in the term {term}?",
       "SELECT COUNT(*) FROM sections s JOIN instructors i ON i.id = s.instructor_id "
       "JOIN departments d ON d.id = i.department_id WHERE d.name = {dept} AND s.term = {term}",
       "SELECT COUNT(*) FROM sections s JOIN instructors i ON i.id = s.instructor_id "
       "JOIN departments d ON d.id = i.department_id WHERE d.name = {dept}",
       {"dept,term": "SELECT DISTINCT d.name, s.term FROM sections s JOIN instructors i "
                     "ON i.id = s.instructor_id JOIN departments d ON d.id = i.department_id "
                     "ORDER BY 1, 2"}),
    _t("university", "students_in_course_term", 2,
       "How many students were enrolled in the course {code} in the term {term}?",
       f"SELECT COUNT(*) {_ENROLLED} WHERE c.code = {{code}} AND s.term = {{term}}",
       f"SELECT COUNT(*) {_ENROLLED} WHERE c.code = {{code}}",
       {"code,term": "SELECT DISTINCT c.code, s.term FROM sections s JOIN courses c "
                     "ON c.id = s.course_id ORDER BY 1, 2"}),
    _t("university", "transcript", 2,
       "List the course codes and grades of the student with id {sid} (the grade is NULL while "
       "a course is in progress).",
       f"SELECT c.code, e.grade {_ENROLLED} WHERE e.student_id = {{sid}}",
       f"SELECT c.code, e.grade {_ENROLLED} WHERE e.student_id = {{sid}} AND e.grade IS NOT NULL",
       {"sid": "SELECT id FROM students WHERE id % 7 = 3 ORDER BY id"}),
    _t("university", "salary_per_department", 3,
       "Give each department's name and the average salary of its instructors hired in or "
       "after {year} (leave out departments without such instructors).",
       "SELECT d.name, AVG(i.salary) FROM departments d JOIN instructors i "
       "ON i.department_id = d.id WHERE i.hired_year >= {year} GROUP BY d.id",
       "SELECT d.name, AVG(i.salary) FROM departments d JOIN instructors i "
       "ON i.department_id = d.id WHERE i.hired_year > {year} GROUP BY d.id",
       {"year": (1998, 2000, 2003, 2005, 2008, 2010, 2012, 2015)}),
    _t("university", "grades_in_course", 3,
       "For the course {code}, how many enrollments got each grade? Give the grade and the "
       "count, leaving out enrollments without a grade.",
       f"SELECT e.grade, COUNT(*) {_ENROLLED} WHERE c.code = {{code}} AND e.grade IS NOT NULL "
       "GROUP BY e.grade",
       f"SELECT e.grade, COUNT(*) {_ENROLLED} WHERE c.code = {{code}} GROUP BY e.grade",
       {"code": "SELECT code FROM courses ORDER BY id"}),
    _t("university", "students_per_department", 3,
       "List each department's name with its number of students who enrolled in {year}, "
       "largest first (leave out departments with none).",
       "SELECT d.name, COUNT(*) AS n FROM departments d JOIN students s "
       "ON s.department_id = d.id WHERE s.enrolled_year = {year} GROUP BY d.id ORDER BY n DESC",
       "SELECT d.name, COUNT(*) AS n FROM departments d JOIN students s "
       "ON s.department_id = d.id WHERE s.enrolled_year = {year} GROUP BY d.id ORDER BY n ASC",
       {"year": "SELECT DISTINCT enrolled_year FROM students ORDER BY 1"}, order_col=1),
    _t("university", "enrollments_per_term", 3,
       "How many enrollments in courses of the {dept} department were there in each term? "
       "Give the term and the count.",
       f"SELECT s.term, COUNT(*) {_ENROLLED} JOIN departments d ON d.id = c.department_id "
       "WHERE d.name = {dept} GROUP BY s.term",
       "SELECT s.term, COUNT(*) FROM sections s JOIN courses c ON c.id = s.course_id "
       "JOIN departments d ON d.id = c.department_id WHERE d.name = {dept} GROUP BY s.term",
       {"dept": "SELECT name FROM departments ORDER BY id"}),
    _t("university", "students_absent_in_term", 4,
       "How many students have no enrollment in the term {term}?",
       "SELECT COUNT(*) FROM students WHERE id NOT IN (SELECT e.student_id FROM enrollments e "
       "JOIN sections s ON s.id = e.section_id WHERE s.term = {term})",
       "SELECT COUNT(DISTINCT e.student_id) FROM enrollments e JOIN sections s "
       "ON s.id = e.section_id WHERE s.term <> {term}",
       {"term": "SELECT DISTINCT term FROM sections ORDER BY 1"}),
    _t("university", "above_department_average", 4,
       "List the names of the instructors of the {dept} department who earn more than the "
       "average salary of that department.",
       "SELECT i.name FROM instructors i JOIN departments d ON d.id = i.department_id "
       "WHERE d.name = {dept} AND i.salary > "
       "(SELECT AVG(salary) FROM instructors WHERE department_id = d.id)",
       "SELECT i.name FROM instructors i JOIN departments d ON d.id = i.department_id "
       "WHERE d.name = {dept} AND i.salary > (SELECT AVG(salary) FROM instructors)",
       {"dept": "SELECT name FROM departments ORDER BY id"}),
    _t("university", "courses_not_offered", 4,
       "How many courses had no section in the term {term}?",
       "SELECT COUNT(*) FROM courses WHERE id NOT IN "
       "(SELECT course_id FROM sections WHERE term = {term})",
       "SELECT COUNT(*) FROM sections WHERE term <> {term}",
       {"term": "SELECT DISTINCT term FROM sections ORDER BY 1"}),
]

_BORROWED = ("FROM loans l JOIN copies c ON c.id = l.copy_id JOIN books b ON b.id = c.book_id")

LIBRARY = [
    _t("library", "long_books", 1, "List the titles of the books with more than {pages} pages.",
       "SELECT title FROM books WHERE pages > {pages}",
       "SELECT title FROM books WHERE pages >= {pages}",
       {"pages": "SELECT DISTINCT pages FROM books ORDER BY pages DESC LIMIT 5 OFFSET 1"}),
    _t("library", "members_in_city", 1, "How many library members live in {city}?",
       "SELECT COUNT(*) FROM members WHERE city = {city}",
       "SELECT COUNT(*) FROM members WHERE city <> {city}",
       {"city": "SELECT DISTINCT city FROM members ORDER BY 1"}),
    _t("library", "open_loans", 1,
       "How many loans made on or after {day} have not been returned yet?",
       "SELECT COUNT(*) FROM loans WHERE returned_on IS NULL AND loaned_on >= {day}",
       "SELECT COUNT(*) FROM loans WHERE returned_on = NULL AND loaned_on >= {day}",
       {"day": ("2022-03-01", "2022-06-01", "2022-09-01", "2023-01-01", "2023-04-01",
                "2023-07-01", "2023-10-01", "2024-01-01", "2024-04-01")}),
    _t("library", "authors_born_before", 1,
       "List the names and birth years of the authors born before {year}.",
       "SELECT name, birth_year FROM authors WHERE birth_year < {year}",
       "SELECT name, birth_year FROM authors WHERE birth_year <= {year}",
       {"year": "SELECT DISTINCT birth_year FROM authors ORDER BY 1 LIMIT 8 OFFSET 2"}),
    _t("library", "books_in_genre", 2, "How many books of the genre '{genre}' are there?",
       "SELECT COUNT(*) FROM books b JOIN genres g ON g.id = b.genre_id WHERE g.name = {genre}",
       "SELECT COUNT(*) FROM copies c JOIN books b ON b.id = c.book_id "
       "JOIN genres g ON g.id = b.genre_id WHERE g.name = {genre}",
       {"genre": "SELECT name FROM genres ORDER BY id"}),
    _t("library", "books_by_author", 2, "List the titles of the books written by {author}.",
       "SELECT b.title FROM books b JOIN authors a ON a.id = b.author_id WHERE a.name = {author}",
       "SELECT b.title FROM books b JOIN authors a ON a.id = b.genre_id WHERE a.name = {author}",
       {"author": "SELECT a.name FROM authors a JOIN books b ON b.author_id = a.id "
                  "WHERE a.name IN (SELECT name FROM authors GROUP BY name HAVING COUNT(*) = 1) "
                  "GROUP BY a.id HAVING COUNT(*) >= 3 ORDER BY a.id"}),
    _t("library", "borrowed_by_member", 2,
       "List the titles of the books borrowed by the member with id {mid} (once per loan).",
       f"SELECT b.title {_BORROWED} WHERE l.member_id = {{mid}}",
       "SELECT b.title FROM loans l JOIN books b ON b.id = l.copy_id WHERE l.member_id = {mid}",
       {"mid": "SELECT member_id FROM loans GROUP BY member_id HAVING COUNT(*) >= 5 "
               "ORDER BY member_id"}),
    _t("library", "copies_at_branch", 2, "How many copies of books does the {branch} branch hold?",
       "SELECT COUNT(*) FROM copies c JOIN branches br ON br.id = c.branch_id "
       "WHERE br.name = {branch}",
       "SELECT COUNT(*) FROM books b JOIN branches br ON br.id = b.id WHERE br.name = {branch}",
       {"branch": "SELECT name FROM branches ORDER BY id"}),
    _t("library", "loans_per_branch", 3,
       "How many loans did each branch make in {year}? Give the branch name and the number of "
       "loans, most loans first.",
       "SELECT br.name, COUNT(*) AS n FROM loans l JOIN copies c ON c.id = l.copy_id "
       "JOIN branches br ON br.id = c.branch_id WHERE strftime('%Y', l.loaned_on) = {year} "
       "GROUP BY br.id ORDER BY n DESC",
       "SELECT br.name, COUNT(*) AS n FROM loans l JOIN copies c ON c.id = l.copy_id "
       "JOIN branches br ON br.id = c.branch_id GROUP BY br.id ORDER BY n DESC",
       {"year": "SELECT DISTINCT strftime('%Y', loaned_on) FROM loans ORDER BY 1"},
       order_col=1),
    _t("library", "pages_per_genre", 3,
       "For each genre, give its name and the average number of pages of its books published "
       "after {year} (leave out genres without such books).",
       "SELECT g.name, AVG(b.pages) FROM genres g JOIN books b ON b.genre_id = g.id "
       "WHERE b.published_year > {year} GROUP BY g.id",
       "SELECT g.name, AVG(b.pages) FROM genres g JOIN books b ON b.genre_id = g.id "
       "JOIN copies c ON c.book_id = b.id WHERE b.published_year > {year} GROUP BY g.id",
       {"year": (1970, 1980, 1990, 2000, 2005, 2010, 2015)}),
    _t("library", "prolific_authors", 3,
       "Which authors wrote at least {k} books? Give each author's name and number of books.",
       "SELECT a.name, COUNT(*) FROM authors a JOIN books b ON b.author_id = a.id "
       "GROUP BY a.id HAVING COUNT(*) >= {k}",
       "SELECT a.name, COUNT(*) FROM authors a JOIN books b ON b.author_id = a.id "
       "GROUP BY a.id HAVING COUNT(*) > {k}",
       {"k": (4, 5, 6, 7, 8)}),
    _t("library", "late_returns_per_year", 3,
       "How many loans of copies held by the {branch} branch were returned after their due "
       "date, per year of the loan? Give the year and the count, in chronological order.",
       "SELECT strftime('%Y', l.loaned_on) AS y, COUNT(*) FROM loans l JOIN copies c "
       "ON c.id = l.copy_id JOIN branches br ON br.id = c.branch_id WHERE br.name = {branch} "
       "AND l.returned_on > l.due_on GROUP BY y ORDER BY y",
       "SELECT strftime('%Y', l.loaned_on) AS y, COUNT(*) FROM loans l JOIN copies c "
       "ON c.id = l.copy_id JOIN branches br ON br.id = c.branch_id WHERE br.name = {branch} "
       "AND l.returned_on >= l.due_on GROUP BY y ORDER BY y",
       {"branch": "SELECT name FROM branches ORDER BY id"}, order_col=0),
    _t("library", "most_borrowed_in_genre", 3,
       "What is the most borrowed book of the genre '{genre}'? Give its title and its number "
       "of loans.",
       f"SELECT b.title, COUNT(*) AS n {_BORROWED} JOIN genres g ON g.id = b.genre_id "
       "WHERE g.name = {genre} GROUP BY b.id ORDER BY n DESC LIMIT 1",
       f"SELECT b.title, COUNT(*) AS n {_BORROWED} JOIN genres g ON g.id = b.genre_id "
       "WHERE g.name = {genre} GROUP BY c.id ORDER BY n DESC LIMIT 1",
       {"genre": "SELECT name FROM genres ORDER BY id"}, order_col=1),
    _t("library", "never_borrowed", 4,
       "How many books of the genre '{genre}' have never been borrowed?",
       "SELECT COUNT(*) FROM books WHERE genre_id = (SELECT id FROM genres WHERE name = {genre}) "
       "AND id NOT IN (SELECT c.book_id FROM loans l JOIN copies c ON c.id = l.copy_id)",
       "SELECT COUNT(*) FROM books WHERE genre_id = (SELECT id FROM genres WHERE name = {genre}) "
       "AND id NOT IN (SELECT copy_id FROM loans)",
       {"genre": "SELECT name FROM genres ORDER BY id"}),
    _t("library", "longer_than_genre_average", 4,
       "How many '{genre}' books have more pages than the average book of that genre?",
       "SELECT COUNT(*) FROM books b JOIN genres g ON g.id = b.genre_id WHERE g.name = {genre} "
       "AND b.pages > (SELECT AVG(pages) FROM books WHERE genre_id = g.id)",
       "SELECT COUNT(*) FROM books b JOIN genres g ON g.id = b.genre_id WHERE g.name = {genre} "
       "AND b.pages > (SELECT AVG(pages) FROM books)",
       {"genre": "SELECT name FROM genres ORDER BY id"}),
]

_FLIGHTS_OF = "FROM flights f JOIN airlines l ON l.id = f.airline_id"

AIRLINE = [
    _t("airline", "departures_from", 1, "How many flights depart from the airport {code}?",
       "SELECT COUNT(*) FROM flights WHERE origin = {code}",
       "SELECT COUNT(*) FROM flights WHERE origin = {code} OR destination = {code}",
       {"code": "SELECT code FROM airports ORDER BY code"}),
    _t("airline", "long_flights", 1,
       "List the flight numbers and durations (in minutes) of the flights longer than {minutes} "
       "minutes.",
       "SELECT flight_no, duration_min FROM flights WHERE duration_min > {minutes}",
       "SELECT flight_no, duration_min FROM flights WHERE duration_min >= {minutes}",
       {"minutes": "SELECT DISTINCT duration_min FROM flights ORDER BY 1 DESC LIMIT 8 OFFSET 3"}),
    _t("airline", "cancelled_in_month", 1,
       "How many flights departing in {month} (as 'YYYY-MM') were cancelled?",
       "SELECT COUNT(*) FROM flights WHERE status = 'cancelled' AND "
       "substr(departs_at, 1, 7) = {month}",
       "SELECT COUNT(*) FROM flights WHERE status = 'cancelled'",
       {"month": "SELECT DISTINCT substr(departs_at, 1, 7) FROM flights ORDER BY 1"}),
    _t("airline", "passengers_of_nationality", 1,
       "How many passengers have the nationality {country}?",
       "SELECT COUNT(*) FROM passengers WHERE nationality = {country}",
       "SELECT COUNT(*) FROM passengers WHERE nationality <> {country}",
       {"country": "SELECT DISTINCT nationality FROM passengers ORDER BY 1"}),
    _t("airline", "flights_of_airline", 2, "How many flights does {airline} operate?",
       f"SELECT COUNT(*) {_FLIGHTS_OF} WHERE l.name = {{airline}}",
       "SELECT COUNT(*) FROM aircraft a JOIN airlines l ON l.id = a.airline_id "
       "WHERE l.name = {airline}",
       {"airline": "SELECT name FROM airlines ORDER BY id"}),
    _t("airline", "flights_between", 2,
       "List the flight numbers and departure times of the flights from {origin} to "
       "{destination} (cities).",
       "SELECT f.flight_no, f.departs_at FROM flights f JOIN airports a ON a.code = f.origin "
       "JOIN airports b ON b.code = f.destination WHERE a.city = {origin} "
       "AND b.city = {destination}",
       "SELECT f.flight_no, f.departs_at FROM flights f JOIN airports a ON a.code = f.destination "
       "JOIN airports b ON b.code = f.origin WHERE a.city = {origin} AND b.city = {destination}",
       {"origin,destination": "SELECT a.city, b.city FROM flights f "
                              "JOIN airports a ON a.code = f.origin "
                              "JOIN airports b ON b.code = f.destination "
                              "GROUP BY 1, 2 HAVING COUNT(*) >= 4 ORDER BY 1, 2"}),
    _t("airline", "bookings_of_passenger", 2,
       "List the flight numbers and seat classes booked by the passenger with id {pid}.",
       "SELECT f.flight_no, b.seat_class FROM bookings b JOIN flights f ON f.id = b.flight_id "
       "WHERE b.passenger_id = {pid}",
       "SELECT f.flight_no, b.seat_class FROM bookings b JOIN flights f ON f.id = b.passenger_id "
       "WHERE b.passenger_id = {pid}",
       {"pid": "SELECT passenger_id FROM bookings GROUP BY passenger_id HAVING COUNT(*) >= 6 "
               "ORDER BY passenger_id"}),
    _t("airline", "flights_with_model", 2, "How many flights were flown with a {model} aircraft?",
       "SELECT COUNT(*) FROM flights f JOIN aircraft a ON a.id = f.aircraft_id "
       "WHERE a.model = {model}",
       "SELECT COUNT(*) FROM aircraft WHERE model = {model}",
       {"model": "SELECT DISTINCT model FROM aircraft ORDER BY 1"}),
    _t("airline", "revenue_per_class", 3,
       "What is the total booking revenue of each seat class on flights departing in {month} "
       "(as 'YYYY-MM')? Give the class and the total.",
       "SELECT b.seat_class, SUM(b.price) FROM bookings b JOIN flights f ON f.id = b.flight_id "
       "WHERE substr(f.departs_at, 1, 7) = {month} GROUP BY b.seat_class",
       "SELECT b.seat_class, SUM(b.price) FROM bookings b JOIN flights f ON f.id = b.flight_id "
       "WHERE substr(b.booked_on, 1, 7) = {month} GROUP BY b.seat_class",
       {"month": "SELECT DISTINCT substr(departs_at, 1, 7) FROM flights ORDER BY 1"}),
    _t("airline", "busiest_airports", 3,
       "Which {n} airports have the most departing flights? Give the airport code and the "
       "number of departures, most first.",
       "SELECT origin, COUNT(*) AS n FROM flights GROUP BY origin ORDER BY n DESC LIMIT {n}",
       "SELECT destination, COUNT(*) AS n FROM flights GROUP BY destination "
       "ORDER BY n DESC LIMIT {n}",
       {"n": (1, 2, 3, 4, 5)}, order_col=1),
    _t("airline", "economy_price_per_airline", 3,
       "For each airline, give its name and the average price of its {seat} bookings.",
       f"SELECT l.name, AVG(b.price) {_FLIGHTS_OF} JOIN bookings b ON b.flight_id = f.id "
       "WHERE b.seat_class = {seat} GROUP BY l.id",
       f"SELECT l.name, AVG(b.price) {_FLIGHTS_OF} JOIN bookings b ON b.flight_id = f.id "
       "GROUP BY l.id",
       {"seat": ("economy", "business", "first")}),
    _t("airline", "delays_per_month", 3,
       "How many flights departing from {code} were delayed in each month? Give the month as "
       "'YYYY-MM' and the count, in chronological order (months without delays left out).",
       "SELECT substr(departs_at, 1, 7) AS m, COUNT(*) FROM flights WHERE status = 'delayed' "
       "AND origin = {code} GROUP BY m ORDER BY m",
       "SELECT substr(departs_at, 1, 7) AS m, COUNT(*) FROM flights WHERE status = 'delayed' "
       "AND (origin = {code} OR destination = {code}) GROUP BY m ORDER BY m",
       {"code": "SELECT code FROM airports ORDER BY code"}, order_col=0),
    _t("airline", "passengers_without_bookings", 4,
       "How many passengers of nationality {country} have no booking?",
       "SELECT COUNT(*) FROM passengers WHERE nationality = {country} "
       "AND id NOT IN (SELECT passenger_id FROM bookings)",
       "SELECT COUNT(*) FROM passengers WHERE nationality = {country} "
       "AND id NOT IN (SELECT id FROM bookings)",
       {"country": "SELECT DISTINCT nationality FROM passengers ORDER BY 1"}),
    _t("airline", "longer_than_airport_average", 4,
       "How many flights departing from {code} are longer than the average flight departing "
       "from {code}?",
       "SELECT COUNT(*) FROM flights WHERE origin = {code} AND duration_min > "
       "(SELECT AVG(duration_min) FROM flights WHERE origin = {code})",
       "SELECT COUNT(*) FROM flights WHERE origin = {code} AND duration_min > "
       "(SELECT AVG(duration_min) FROM flights)",
       {"code": "SELECT code FROM airports ORDER BY code"}),
    _t("airline", "fullest_flight_of", 4,
       "Which flight of {airline} has the most bookings? Give its id, flight number and "
       "number of bookings.",
       "SELECT f.id, f.flight_no, COUNT(*) AS n FROM flights f JOIN bookings b "
       "ON b.flight_id = f.id WHERE f.airline_id = (SELECT id FROM airlines WHERE name = "
       "{airline}) GROUP BY f.id ORDER BY n DESC LIMIT 1",
       "SELECT f.id, f.flight_no, COUNT(*) AS n FROM flights f JOIN bookings b "
       "ON b.flight_id = f.id WHERE f.airline_id = (SELECT id FROM airlines WHERE name = "
       "{airline}) GROUP BY f.flight_no ORDER BY n DESC LIMIT 1",
       {"airline": "SELECT name FROM airlines ORDER BY id"}, order_col=2),
]

TEMPLATES: tuple[Template, ...] = (*SHOP, *UNIVERSITY, *LIBRARY, *AIRLINE)
"""Every template, database by database."""
