from llm.base import BackendError, Completion


class ScriptedBackend:
    """An llm.base.ChatBackend answering from a script (the model endpoint is another process)."""

    name = "scripted"
    context_window = 4096

    def __init__(self, reply=None, error=None):
        self.reply, self.error, self.calls = reply, error, []

    def count_tokens(self, text):
        return len(text)

    def stream(self, messages, **kwargs):
        yield from ()

    def complete(self, messages, *, max_tokens=512, temperature=0.0):
        self.calls.append(messages)
        if self.error:
            raise BackendError(self.error)
        return Completion(text=self.reply)


class EchoBackend(ScriptedBackend):
    """Answers each request by a rule over its last user message."""

    def __init__(self, rule):
        super().__init__()
        self.rule = rule

    def complete(self, messages, *, max_tokens=512, temperature=0.0):
        self.calls.append(messages)
        return Completion(text=self.rule(messages[0]["content"], messages[-1]["content"]))
