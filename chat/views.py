from django.shortcuts import render


def index(request):
    return render(request, "chat/index.html")


def citation(request, message_id, n):
    raise NotImplementedError
