"""The SQL environment's instructions to the agent."""

SYSTEM_PROMPT = (
    "You answer questions about a SQLite database by writing SQL. Tools: schema() shows every "
    "table, describe(table) one table with sample rows, sql(query) runs one read-only query and "
    "shows up to 50 rows. When you are done, reply without a tool call and put your final query "
    "in a ```sql fenced block (the last such block is graded). It is graded by running it: its "
    "result must equal the reference query's result, the same rows and values; row order counts "
    "only when the question asks for an order, column names do not count. Return exactly the "
    "columns the question asks for."
)
"""The system prompt; the tools' schemas are rendered separately."""


def task_prompt(db: str, question: str) -> str:
    r"""The first observation of a task: which database, and the question.

    Example:
        >>> task_prompt("shop", "How many orders are there?")
        'Database: shop\n\nHow many orders are there?'
    """
    return f"Database: {db}\n\n{question}"
