"""Templates ask the policy what they may show about a document:

    {% load knowledge_access %}{% document_facts doc as facts %}{{ facts.state_display }}

The acting user comes from the template's request; a template rendered without one shows what a
reader would see (no draft number, state or editor's name): it fails closed.
"""

from django import template

from knowledge.policy import DocumentFacts, request_knowledge_access

register = template.Library()


@register.simple_tag(takes_context=True)
def document_facts(context, document) -> DocumentFacts:
    return request_knowledge_access(context.get("request")).facts(document)
