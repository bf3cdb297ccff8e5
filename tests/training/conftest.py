import pytest

from accounts.models import Role
from tests.factories import member


@pytest.fixture
def ml(people, credit, hr):
    """Training users: a Credit department admin, an HR admin, an ML engineer (global permission)."""
    from django.contrib.auth.models import Permission

    from accounts.models import User

    engineer = member(credit, Role.EMPLOYEE, "ml_engineer")
    engineer.user_permissions.add(Permission.objects.get(codename="use_training", content_type__app_label="training"))
    return {
        **people,
        "hr_admin": member(hr, Role.ADMIN, "hr_admin"),
        "ml_engineer": User.objects.get(pk=engineer.pk),
    }


CHATML = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['role'] == 'assistant' -%}"
    "{%- generation -%}{{- message['content'] + '<|im_end|>' -}}{%- endgeneration -%}{{- '\\n' -}}"
    "{%- else -%}"
    "{{- message['content'] + '<|im_end|>' + '\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory):
    """A real (small) byte-level BPE tokenizer with a ChatML template, trained here in a second."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = [
        "员工入职满一年后享有带薪年假。Employees receive paid annual leave after one year.",
        "贷款审批需要提供身份证和收入证明。Loan approval needs an ID card and proof of income.",
        "如何申请报销？请在系统中提交发票。How do I claim expenses? Submit the invoice.",
    ] * 20
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHATML
    path = tmp_path_factory.mktemp("tokenizer")
    fast.save_pretrained(path)
    return path


@pytest.fixture
def tokenizer_setting(settings, tokenizer_dir):
    settings.TRAINING_TOKENIZER_PATH = str(tokenizer_dir)
    return tokenizer_dir


@pytest.fixture(scope="session")
def demo_model_dir():
    """The demo base model (built once per checkout under var/models, then cached)."""
    from training.finetune.demo_model import ensure_demo_model

    return ensure_demo_model()
