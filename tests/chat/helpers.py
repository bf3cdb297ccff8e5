import json


def sse_events(response) -> list[tuple[str, dict]]:
    """Parse a text/event-stream response into (event type, data) pairs."""
    assert response["Content-Type"].startswith("text/event-stream")
    body = b"".join(response.streaming_content).decode()
    events = []
    for block in body.split("\n\n"):
        if not block.strip() or block.startswith(":"):
            continue
        kind, data = "message", ""
        for line in block.split("\n"):
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
        events.append((kind, json.loads(data) if data else {}))
    return events


def ask(client, assistant, question, conversation=None):
    data = {"assistant": assistant.pk, "question": question}
    if conversation is not None:
        data["conversation"] = conversation
    return sse_events(client.post("/chat/ask/", data))
