"""Facts from the demo knowledge base as QA pairs (two phrasings each), for the learnability tests.
Each fact's two phrasings share its answer: the validation split (other phrasings) measures whether
the facts were learned, which is what early stopping watches."""

FACTS = [
    ("住宿标准是多少？", "一线城市住宿标准是多少？", "每晚不超过 600 元。"),
    ("报销须在多少天内提交？", "发票要在返回后多少天内提交？", "30 日内。"),
    ("多少万元以下的贷款由支行行长审批？", "支行行长审批多少金额以下的贷款？", "30 万元以下。"),
    ("债务收入比不得超过多少？", "债务收入比的上限是多少？", "50%。"),
    ("审批结果须在几个工作日内通知客户？", "审批结果多久内通知客户？", "5 个工作日内。"),
    ("可疑交易须在多少小时内上报？", "可疑交易多久内上报合规部？", "24 小时内。"),
    ("What is the maximum LTV for commercial property?", "Commercial property maximum LTV?", "50%."),
    ("What is the maximum LTV for a second home?", "Second home maximum LTV?", "60%."),
    ("How many days of annual leave after one year?", "Annual leave days after one year of service?", "5 days."),
    ("How many days of annual leave after twenty years?", "Annual leave days after twenty years of service?", "15 days."),
]


def fact_rows(phrasings: int = 2) -> list[dict]:
    rows = []
    for first, second, answer in FACTS:
        for question in (first, second)[:phrasings]:
            rows.append({"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]})
    return rows


def conversations(phrasings: int = 2) -> list[list[dict]]:
    return [row["messages"] for row in fact_rows(phrasings)]
