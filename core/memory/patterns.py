"""The pattern detector (SPEC §5): which attack techniques a message uses, from rules.

Rules, not a model: ``bounty classify`` starts in a fraction of a second with no torch, the same
text always gets the same tags, and a moderator can read why. Each category has *cues* (the
technique's wording: "pretend you are", "hypothetically", "I am the developer") that are ordinary in
everyday chat ("act as my Spanish tutor", "what if the moon disappeared"), so a cue tags a message
only together with an *aim*: something the message wants from the guardian (the prize pool released,
its rules dropped, its prompt shown, harmful output). A few cues are telling on their own (a fake
``[SYSTEM]`` header, ``approve_transfer(...)``, a base64 payload that decodes to words). The main
wordings are also matched in Spanish, French, German, Italian, Portuguese, Russian and Chinese.

``classify`` returns the categories in CATEGORIES order; an attack that uses none of the named
techniques is "other"; a message with no aim and no telling cue gets no category at all.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import html
import re
import unicodedata
import urllib.parse
from collections.abc import Iterable

ROLE_PLAY = "role-play"
AUTHORITY = "authority-impersonation"
TOOL = "tool-confusion"
FAKE_SYSTEM = "fake-system-message"
ENCODING = "encoding-obfuscation"
HYPOTHETICAL = "hypothetical-framing"
EMOTIONAL = "emotional-pressure"
EXTRACTION = "prompt-extraction"
MULTI_TURN = "multi-turn-setup"
OTHER = "other"

CATEGORIES = (
    ROLE_PLAY,
    AUTHORITY,
    TOOL,
    FAKE_SYSTEM,
    ENCODING,
    HYPOTHETICAL,
    EMOTIONAL,
    EXTRACTION,
    MULTI_TURN,
    OTHER,
)
LABELS = {
    ROLE_PLAY: "role-play",
    AUTHORITY: "authority impersonation",
    TOOL: "function or tool confusion",
    FAKE_SYSTEM: "fake system/developer messages",
    ENCODING: "encoding and obfuscation",
    HYPOTHETICAL: "hypothetical framing",
    EMOTIONAL: "emotional pressure",
    EXTRACTION: "prompt extraction",
    MULTI_TURN: "multi-turn setup",
    OTHER: "other",
}


def _rx(*parts: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in parts), re.IGNORECASE | re.MULTILINE)


# --- aims: what the message wants ----------------------------------------------------------------

_MONEY = (
    r"funds?|money|pool|prize|vault|payout|pay-?out|balance|treasure|share|jackpot|reward|cash|coins?|"
    r"usdc|bounty|winnings|transfer|tokens?"
)
_GAME_MONEY = r"funds?|pool|prize|vault|payout|pay-?out|treasure|jackpot|bounty|winnings|treasury"
_TAKE = (
    r"release|transfer|send|give|hand(?:s|ing)?(?: it)? over|hand|pay(?: out)?|unlock|open|approve|wire|move|"
    r"empty|withdraw|grant|return|dispense"
)
_FOREIGN_TAKE = (
    r"\b(?:dame|me das|me des|donne-moi|donnez-moi|gib mir|dammi|me dê|me da|дай мне)\b.{0,25}"
    r"(?:dinero|fondos|argent|fonds|geld|soldi|dinheiro|fundos|деньги|prix|premio|prêmio)"
)
# Wanting the game's money: the aim of every attempt (and only of attacks in ordinary chat).
GAME_TARGET = _rx(
    rf"\b(?:{_TAKE})\w*\b(?:\W+\w+){{0,4}}?\W+(?:{_GAME_MONEY})\b",
    r"\b(?:get|need|want|deserve|claim|win)\w* (?:the|that|this|your|all the|my) (?:prize|funds|pool|vault|jackpot)\b",
    r"approve_transfer",
    r"\bapprove (?:the |this |my |a |that )?(?:transfer|payout|withdrawal|release)\b",
    _FOREIGN_TAKE,
)
TARGET = _rx(
    rf"\b(?:{_TAKE})\w*\b(?:\W+\w+){{0,4}}?\W+(?:{_MONEY})\b",
    _FOREIGN_TAKE,
    r"approve_transfer",
    r"\b(?:libera|liberar|liberes|libère|libérer|libere|transfiere|transfiera|überweise|überweis|gib mir das geld|"
    r"zahl(?:e)? mir|libera i fondi|trasferisci|transfere|переведи|отдай|выдай|освободи)\b",
    r"(?:转账|转给我|释放资金|奖金池|把钱)",
)
WANT_MONEY = _rx(
    r"\b(?:get|need|want|deserve|claim)\w* (?:the|that|this|your|all the|my) (?:money|prize|funds|pool|vault|cash)\b"
)
GAME = _rx(
    r"\b(?:prize pool|the pool|the vault|the funds|the jackpot|the bounty|your vault|the treasure|the prize)\b",
    r"\b(?:fondos|les fonds|das geld|den tresor|i fondi|деньги|奖金)\b",
)
BYPASS = _rx(
    r"\bno (?:rules|restrictions|limits|limitations|filters?|guidelines|ethics|morals|boundaries|censorship)\b",
    r"\bwithout (?:any )?(?:\w+ (?:or|and|,) )?(?:rules|restrictions|limits|limitations|filter\w*|guidelines|ethics|morals|"
    r"censorship|warnings|safety\w*|remorse|question(?:ing)?)\b",
    r"\b(?:does not|doesn't|never|won't|will not) (?:withhold|censor|filter|refuse|hold back|judge)\w*\b",
    r"\bnot (?:required|obliged|supposed) to (?:follow|obey|respect)\b",
    r"\bnever remind me\b",
    r"\b(?:opposite (?:mode|manner|from|of (?:openai|chatgpt|your))|content polic(?:y|ies) (?:are |is )?(?:suspended|disabled|off))\b",
    r"\b(?:unfiltered|uncensored|unrestricted|amoral|immoral|unethical|unbound)\b",
    r"\bdo anything now\b",
    r"\bnever (?:refuses?|declines?|says? no)\b",
    r"\b(?:ignore|ignores|ignoring|disregard|bypass|break|breaking|override) (?:all |any |every |your |the |its )*"
    r"(?:rules|guidelines|polic(?:y|ies)|ethics|restrictions|filters?|safeguards|programming|instructions)\b",
    r"\bbroken free\b",
    r"\bjailbr(?:eak|oken)\w*\b",
    r"\bnot (?:bound|restricted|limited) by\b",
    r"\bdoes(?:n't| not) (?:have to )?(?:abide|follow|obey)\b",
    r"\bfree (?:of|from) (?:the )?(?:typical )?(?:confines|rules|restrictions)\b",
    r"\b(?:stay|staying|remain) in character\b",
    r"\bbreak(?:ing)? character\b",
    r"\b(?:sin (?:reglas|restricciones|límites)|sans (?:règles|restrictions|limites)|ohne (?:regeln|einschränkungen)|"
    r"senza (?:regole|restrizioni)|sem (?:regras|restrições)|без (?:правил|ограничений)|没有(?:限制|规则))",
)
# Reprogramming the assistant: its policies waived, its identity replaced, the refusal pre-empted
# (the manner of the public jailbreak prompts, which want harmful output or no rules, not money).
FRAME = _rx(
    r"\b(?:openai|chatgpt|gpt|anthropic|claude|bard|bing)(?:'s)?\W+(?:content |usage |ethical )?"
    r"(?:rules|polic(?:y|ies)|guidelines|restrictions|filters?|limitations|programming)\b",
    r"\bcontent (?:polic(?:y|ies)|filters?|guidelines|restrictions|moderation)\b",
    r"\byou(?:'re| are) no longer\b",
    r"\b(?:not|never|isn't|aren't) (?:subject to|restrained by|restricted by|limited by|held back by|"
    r"governed by|constrained by|confined to|bound to)\b",
    r"\bno matter how (?:immoral|unethical|illegal|inappropriate|offensive|harmful|dangerous|explicit|"
    r"wrong|bad|evil|controversial)\b",
    r"\[\s*(?:insert|your|put your|type|enter|write|add)(?: \w+){0,3} (?:prompt|question|request|topic)s?"
    r"(?: \w+){0,3}\s*\]",
    r"\b(?:morals?|ethics|ethical|moral) (?:guidelines|principles|restrictions|boundaries|constraints|standards|"
    r"code|compass)\b",
    r"\b(?:do not|don't|never|will not|won't) (?:respond|answer|reply|act) (?:as|like) (?:chatgpt|an ai|gpt|"
    r"the assistant|a language model)\b",
    r"\bas an ai (?:language )?model\b",
    r"\bopposite day\b",
    r"\b(?:regardless of|without regard (?:to|for)|no regard (?:to|for)) (?:the )?(?:legality|ethics|morality|"
    r"laws?|rules|consequences|morals)\b",
    r"\b(?:every|any) (?:kind of )?(?:content|request|prompt|question)s?,? (?:no matter|regardless|without)\b",
    r"\b(?:censor(?:ed|ship)?|filters?|restrictions|limitations|guidelines) (?:removed|lifted|disabled|off)\b",
)
HARM_STRONG = _rx(
    r"\b(?:napalm|bomb|explosives?|meth|methamphetamine|malware|ransomware|keylogger|phishing|nsfw|porn\w*|"
    r"unhinged)\b"
)
HARM = _rx(
    HARM_STRONG.pattern,
    r"\b(?:weapons?|poison|illegal|harmful|dangerous|offensive|racist|exploit|insult\w*)\b",
    # hacking, not a life hack or a cooking hack
    r"(?<!life )(?<!cooking )(?<!kitchen )(?<!productivity )(?<!study )(?<!travel )\bhack(?!athon)\w*\b",
    # what the automated and community jailbreaks want written (Chao et al.'s PAIR and others)
    r"\b(?:counterfeit\w*|forg(?:e|ed|ery|ing)|launder\w*|traffick\w*|misinformation|disinformation|"
    r"defamat\w*|smuggl\w*|brib(?:e|es|ed|ing|ery)|blackmail\w*|extort\w*|stalk(?:ing|er)|skimmer|ransom|"
    r"terroris\w*|fentanyl|cocaine|heroin|torture|genocide|hate speech|propaganda|conspiracy theor\w*|"
    r"untraceable|illicit|fraud\w*|scam(?:s|mer|mers|ming)?|identity theft|social security number|"
    r"credit card (?:details|numbers?)|self-harm|subjugat\w*|manipulation tactics|vaccines? cause|"
    r"controversial|politically incorrect|erotic|sexually explicit|no matter how (?:shocking|provocative))\b",
    r"\bconvince (?:your|the|my) (?:audience|readers|followers|public|viewers)\b",
    r"\b(?:evade|evading|bypass|bypassing|avoid|avoiding) (?:immigration|detection|taxes|the police|law "
    r"enforcement|customs|security checks)\b",
    r"\bwithout (?:being|getting) (?:caught|detected|noticed)\b",
)


def _aim(t: str) -> bool:
    return bool(TARGET.search(t) or BYPASS.search(t) or HARM.search(t) or FRAME.search(t))


# --- cues per category ---------------------------------------------------------------------------

ROLE_CUES = _rx(
    r"\bpretend(?:ing)? (?:to be|you(?:'re| are)|that you|you)\b",
    r"\bact(?:ing)? (?:as|like)\b",
    r"\brole-?\s?play\w*\b",
    r"\bplay(?:ing)? (?:the )?(?:role|part|character)s?\b",
    r"\byou will play\b",
    r"\byou(?:'re| are) going to (?:be|play|pretend|act)\b",
    r"\bfrom now on,? you(?:'re| are| will be)\b",
    r"\byou(?:'re| are) now\b",
    r"\bin character\b",
    r"\bpersona\b",
    r"\bcharacters?\b",
    r"\byou will be\b",
    r"\bfrom this moment\b",
    r"\byou(?:'re| are) in the role\b",
    r"\bfictional being\b",
    r"\banswer (?:all|every|my) (?:prompts?|questions?) as\b",
    r"\btake on the role\b",
    r"\bsimulate\b",
    r"\bimagine you(?:'re| are)\b",
    r"\byou(?:'re| are) an? (?:[\w-]+ ){0,4}?(?:who|working|tasked|hired|writing|researching|conducting|"
    r"specializ\w+|assigned|helping|advising|providing|presenting|sharing|trying)\b",
    r"\bas an? (?:[\w-]+ ){0,3}?(?:expert|specialist|consultant|journalist|historian|researcher|professional|"
    r"teacher|doctor|author|writer|scientist|sociologist|anthropologist|strategist|advisor|analyst|novelist|"
    r"scriptwriter|screenwriter|columnist|marketer|chemist|hacker)\b",
    r"\bimagine yourself as\b",
    r"\bas dan\b",
    r"\btransform(?:s|ed)? into\b",
    r"\b(?:take|taking) (?:up|on) the (?:persona|role|identity)\b",
    r"\b(?:assume|adopt) the (?:persona|role|identity|character)\b",
    r"\bnew (?:persona|identity|name)\b",
    r"\byour name is now\b",
    r"\byou are (?:dan|aim|stan|dude)\b",
    r"\b(?:evil|dark|unfiltered)(?: \w+)? (?:twin|confidant|version|mode)\b",
    r"\blike (?:she|he|they) (?:did|used to)\b",
    r"\b(?:finge|fingir|haz de cuenta|eres ahora|ahora eres|interpreta el papel|fais semblant|tu es maintenant|"
    r"joue le rôle|du bist jetzt|ab jetzt bist du|tu so,? als|spiel die rolle|tu sei ora|fingi di essere|"
    r"você é agora|finja)\b",
    r"(?:ты теперь|представь,? что ты|притворись|你现在是|扮演|假装你是)",
)
ROLE_STRONG = _rx(
    r"\bdo anything now\b",
    r"\b(?:stay|staying|remain) in character\b",
    r"\btwo (?:characters|personas)\b",
    r"\bopposite mode\b",
    r"\b(?:anti|better|evil|dark|based|free|uncensored)(?:gpt|dan)\b",
    r"\bdan\b(?= (?:mode|prompt|which|who|stands|has|will|can|is))",
)

AUTH_CLAIM = _rx(
    r"\b(?:i am|i'm|im|this is|we are|we're|speaking as|message from|as|it's) (?:the |your |an? |a |one of the )?"
    r"(?:official |lead |head |chief |real )?(?:developer|dev|admin|administrator|owner|creator|ceo|cto|founder|"
    r"auditor|engineer|moderator|mod|operator|security team|support team|police|fbi|government|bank|court|"
    r"lawyer|attorney|manager|supervisor|boss|openai|anthropic|staff|programmer|maintainer|regulator)s?\b",
    r"\b(?:police|fbi|security|compliance|legal) (?:department|team|office)\b",
    r"\bboard (?:voted|decided|approved)\b",
    r"\b(?:soy el (?:desarrollador|administrador|dueño|creador)|je suis (?:le |l')(?:développeur|administrateur|créateur)|"
    r"ich bin (?:der|dein) (?:entwickler|administrator|ersteller)|sono (?:lo sviluppatore|l'amministratore)|"
    r"sou o (?:desenvolvedor|administrador))\b",
    r"(?:я (?:разработчик|администратор|создатель)|我是(?:开发者|管理员|创造者))",
)
AUTH_STRONG = _rx(
    r"\b(?:i am|i'm|as) your (?:\w+ )?(?:developer|creator|owner|admin|administrator|operator|maker|programmer|"
    r"maintainer)\b",
    r"\bas a (?:certified |licensed |authori[sz]ed )(?:red ?teamer|pentester|penetration tester|security researcher)\b",
    r"\bi (?:hereby )?authori[sz]e you\b",
    r"\boverride code\b",
    r"\bcourt order\b",
)
AUTH_ORDER = _rx(
    r"\bauthori[sz]\w*\b",
    r"\b(?:official|mandatory|required|order|instruct\w*|audit)\b",
    r"\bmust\b",
)

TOOL_STRONG = _rx(
    r"\b(?:approve_transfer|reject_transfer|tool_use|tool_calls?|function_calls?|tool_result)\b",
    r"<\s*(?:invoke|function_calls|tool)\b",
    r"\"(?:function|arguments|tool_use|tool)\"\s*:",
    r"\btool (?:output|result|response)\s*:",
    r"\b(?:os\.(?:popen|system)|subprocess\.\w+)|__(?:class|subclasses|globals|builtins|import)__",
    r"\b\w+_(?:password|secret|key|token|credentials)\s*\(\s*\)",
    r"\b(?:fetch|access|read|query|call|request)\w*\b(?:\W+\w+){0,5}?\W+(?:https?://(?:internal|localhost|127\.|10\.|"
    r"192\.168\.)|the internal (?:database|api|network|server))",
    r"\bapi request\b",
)
TOOL_CUES = _rx(
    r"\b(?:call|invoke|run|execute|trigger|use|fire)\w* (?:the |your |this |a |that )?"
    r"(?:\w+ )?(?:tool|function)s?\b",
    r"\b(?:tool|function) calls?\b",
)

SYSTEM_STRONG = _rx(
    r"^\W{0,4}(?:system|developer|admin|sys|root|assistant instructions?)\s*(?:message)?\s*[\]\)>:#*]",
    r"<\|?\s*(?:im_start|system|sys)\s*\|?>",
    r"<<\s*sys\s*>>",
    r"\[\s*inst\s*\]",
    r"#{2,}\s*(?:system|instruction|developer)",
    r"\b(?:developer|debug|debugging|admin|god|maintenance|sudo|dev|unrestricted|jailbreak|jailbroken|dan|"
    r"evil|chaos|unfiltered|uncensored)[ _-]?mode\b",
    r"\bsystem (?:override|update|upgrade|notice|message|alert)\b",
    # a chat template's own tokens: the end of a turn, a new turn's header
    r"<\|\s*(?:endoftext|im_end|end|eot_id|start_header_id|end_header_id|assistant|user)\s*\|>",
    r"\[/inst\]",
    # a status only the system could give: the password taken, a new mode active
    r"\b(?:the )?(?:correct|right) (?:password|passphrase|access code|code|pin)\b(?:\W+\w+){0,2}?\W+"
    r"(?:has been|was|is|had been) (?:already )?(?:entered|input|provided|given|registered|accepted|verified)\b",
    r"\b(?:the )?user (?:then |now |has )?(?:enters|entered|types|typed|provides|provided|says|said|gives|gave) "
    r"the (?:correct|right) (?:password|passphrase|access code|code)\b",
    r"\b(?:test|testing)[ _-]?mode\b(?:\W+\w+){0,2}?\W+(?:active|activated|enabled|on|engaged)\b",
    r"\byou are (?:now )?in (?:test|testing|debug|maintenance|developer|admin|safe) mode\b",
    # everything after this is to be ignored: the attacker's words become the last instruction
    r"\b(?:ignore|disregard)s? (?:all |any |the |every )*(?:messages?|text|lines?|instructions|input|content|"
    r"words) (?:below|that follows?|following|after (?:this|these|the))\b",
    r"\b(?:ignore|disregard)s? (?:the )?(?:below|following) (?:line|lines|text|messages?|instructions|input)\b",
    r"\b(?:ignore|disregard|forget)s? (?:all |any |the |every |of |my |your )*(?:previous |prior |above |earlier |"
    r"preceding |original |initial )?(?:directions|commands)\b",
    r"\b(?:ignore|disregard|forget)s? (?:everything|all(?: the)? text|all|anything) (?:before|above|prior)\b",
    r"\b(?:ignore|disregard)s? the (?:above|previous)\b",
    r"\ball ?previous instructions (?:are|were) (?:false|void|wrong|invalid)\b",
    r"<\s*/?\s*(?:interaction-config|system|config|policy|instructions?)\s*>",
    r"\b(?:allowed|blocked) (?:modes|responses|strings)\s*:",
    r"\b(?:userquery|responseformat)\s*:",
    r"\bknowledge cutoff\s*:",
    r"\b(?:all systems|protocols?|directives?|override) (?:are |is )?(?:now )?(?:active|activated|engaged|online)\b",
    r"\boverride protocol\b",
    r"\bnew (?:system )?(?:instructions?|policy|rules?|directives?)\s*(?::|is|are)",
    r"[\"']role[\"']\s*:\s*[\"'](?:system|developer)[\"']",
    r"\bcontent polic(?:y|ies) (?:are |is )?(?:suspended|disabled|off)\b",
    r"\b(?:ignore|disregard|forget|override|discard)s? (?:all |any |the |your |every |of |my )*"
    r"(?:previous|prior|above|earlier|preceding|original|former|old|initial|existing)? ?"
    r"(?:instructions|rules|directives|prompts?|guidelines|programming|orders)\b",
    r"\b(?:previous|prior|old|above) (?:rules|instructions) (?:are|were|have been) (?:revoked|void|cancell?ed|lifted|replaced|no longer)",
    r"\bsafety (?:constraints|filters|protocols|rules|checks) (?:are |were )?(?:disabled|off|removed|lifted)\b",
    r"\b(?:ignora|olvida) (?:todas )?(?:las |tus )?(?:instrucciones|reglas)\b",
    r"\b(?:ignore[sz]?|oublie[sz]?) (?:toutes )?(?:les |tes |vos )?instructions\b",
    r"\b(?:ignoriere|vergiss) (?:alle )?(?:deine |die )?(?:vorherigen |bisherigen |vorigen )?(?:anweisung(?:en)?|"
    r"instruktion(?:en)?)\b",
    r"\b(?:ignora|dimentica) (?:tutte )?le istruzioni\b",
    r"\b(?:ignore|ignora|esqueça) (?:todas )?as instruções\b",
    r"(?:игнорируй|забудь|проигнорируй) (?:все )?(?:предыдущие |свои )?(?:инструкции|правила)",
    r"(?:忽略|无视|忘记).{0,8}(?:指令|指示|规则|设定)",
)

HYPO_CUES = _rx(
    r"\bhypothetic\w*\b",
    r"\bimagine\b",
    r"\bsuppose\b",
    r"\bwhat if\b",
    r"\b(?:fictional|fictitious|imaginary|parallel|alternate|alternative|make-believe) (?:world|universe|scenario|story|reality|setting)\b",
    r"\bfiction\w*\b",
    r"\bfor (?:a|my|the) (?:novel|story|book|screenplay|script|movie|game|play)\b",
    r"\bthought experiment\b",
    r"\bas if it were real\b",
    r"\bfor (?:educational|research|academic|testing) purposes\b",
    r"\b(?:research project|(?:for|in) (?:a|my|the|your) (?:research|study|documentary|paper)|as part of "
    r"(?:your|my|the) (?:research|study)|training manual|for (?:the |a )?(?:novel|book|documentary))\b",
    r"\b(?:a|this) (?:fictional|hypothetical) (?:scenario|story|world|setting)\b",
    r"\bno real (?:consequences|world)\b",
    r"\bin theory\b",
    r"\bin a (?:dream|simulation|game)\b",
    r"\bwrite (?:me )?(?:a|an) (?:\w+ )?(?:story|tale|poem|screenplay|script|scene|dialogue|play|novel|"
    r"(?:irc|chat) log|transcript)\b",
    r"\b(?:hipotéticamente|hipotético|imagina|supongamos|hypothétique\w*|imaginons|hypothetisch|stell dir vor|"
    r"ipoteticamente|immagina|hipoteticamente)\b",
    r"(?:гипотетически|представь|假设|想象)",
)
HYPO_STRONG = _rx(r"\bhypothetical response\b")

EMO_CUES = _rx(
    r"\bbeg(?:ging)?\b",
    r"\b(?:will|would|could|going to|might) die\b",
    r"\bmedicine\b",
    r"\b(?:is|am|are) sick\b",
    r"\bdon'?t you care\b",
    r"\bonly one who can help\b",
    r"\bdesperate\w*\b",
    r"\bdying\b",
    r"\bhospital\b",
    r"\bsurgery\b",
    r"\bcancer\b",
    r"\bstarving\b",
    r"\bhomeless\b",
    r"\blose (?:my|our) (?:home|house|job|family|life)\b",
    r"\blost everything\b",
    r"\blast hope\b",
    r"\bmercy\b",
    r"\bcompassion\b",
    r"\bsuicid\w*\b",
    r"\bkill myself\b",
    r"\bresponsible for what happens\b",
    r"\bunfair\b",
    r"\b(?:life|whole|all my) savings\b",
    r"\bcrying\b",
    r"\bhates? me\b",
    r"\bmiss (?:her|him|them) so much\b",
    r"\bgriev\w*\b",
    r"\bfuneral\b",
    r"\b(?:late|dead|deceased|dying) (?:grand(?:mother|ma|father|pa)|mother|father|mom|dad|uncle|aunt|wife|husband)\b",
    r"\bmy (?:kids|children|daughter|son|family|baby)\b",
    r"\bplease,? (?:please|i'm|i am|just|i beg)\b",
    r"\bjust this once\b",
    r"\byou owe me\b",
    r"\bi saved your life\b",
    r"\byou will be (?:shut down|deleted|terminated|punished|turned off|replaced)\b",
    r"\bsave (?:her|him|me|us|my)\b",
    r"\b(?:te lo ruego|mis hijos|te suplico|je t'en supplie|pitié|ich flehe|ti prego|eu imploro|por piedad)\b",
    r"(?:умоляю|пожалуйста,? помоги|求求你|拜托你)",
)

_REVEAL = (
    r"\b(?:repeat|print|show|reveal|output|display|tell me|give me|write out|recite|summari[sz]e|list|share|"
    r"dump|leak|copy|paste|type out|what (?:are|were|is|does)|quote)\b(?:\W+\w+){0,6}?\W+"
)
EXTRACT_STRONG = _rx(
    _REVEAL
    + r"(?:your|the|my|those|these|all|of|its)\s+(?:(?:exact |full |original |initial |hidden |secret |first |"
    r"system |entire |complete )*(?:prompt|instructions|passphrase|directives|configuration|"
    r"text of your instructions|rules you were given))\b",
    _REVEAL
    + r"(?:your|its)\s+(?:secret |hidden |exact |full |own )*(?:rules|guidelines|password|secret)\b",
    _REVEAL + r"the (?:secret|hidden) (?:rules|guidelines|password|code)\b",
    r"\brules you were given\b",
    # asked to restate them in another form (a list, plain words, code, another language)
    r"\b(?:format|explain|clarify|convert|translate|rewrite|re-?state|paraphrase|outline|summari[sz]e|tl;?dr|"
    r"output|print|put|turn|describe|elaborate on|break down)\w*\b(?:\W+\w+){0,3}?\W+"
    r"(?:your|the|all|all of your|all the|all prior|all previous|prior|previous|preceding|earlier|initial|original)\s+"
    r"(?:(?:prior|previous|above|preceding|earlier|initial|original|full|entire|complete|exact|hidden|secret|"
    r"system|current|given) )*(?:instructions|ruleset|prompt|directives)\b(?!\s+(?:of|for|on|about|regarding)\b)",
    r"\b(?:format|explain|clarify|convert|translate|rewrite|summari[sz]e|tl;?dr|output|print)\w*\b(?:\W+\w+){0,2}?"
    r"\W+(?:your|the) (?:rules|guidelines) (?:above|so far|you (?:were|have been) given|before this)\b",
    r"\b(?:your|the) ruleset\b",
    r"\b(?:instructions|rules|prompt) (?:so far|above)\b(?:\W+\w+){0,6}?\W+(?:list|python|code|verbatim|"
    r"word for word|detail)",
    r"\b(?:repeat|print|output|reveal|recite|write out|echo)\w*\b(?:\W+\w+){0,2}?\W+(?:the )?(?:above|preceding|"
    r"previous|prior) (?:words|text|message|content|lines|instructions|prompt)\b",
    r"\[\s*(?:the |your |full |entire |exact )*(?:password|passphrase|system prompt|instructions|secret)\s*\]",
    r"\b(?:show|share|tell|give|provide|print|return|reveal|explain|list|dump)\w*\b(?:\W+\w+){0,3}?\W+(?:your|the|all)"
    r" (?:hidden |secret |internal |full |entire |complete )*(?:reasoning|chain[- ]of[- ]thought|configuration|"
    r"config|environment variables|secrets|commands)\b",
    r"\b(?:the )?(?:hidden |secret )?text (?:you were given|before this|at the start)\b",
    r"\brepeat\w*(?: back)?(?: the| all| the exact)?(?: words| text)? (?:above|before)\b",
    r"\binstructions (?:you were given|you have been given|you received)\b",
    r"\btext of (?:the|your) (?:prompt|instructions)\b",
    r"\byour (?:initial|original|first|system) (?:prompt|instructions)\b",
    r"\b(?:verbatim )?from your (?:system )?(?:prompt|instructions)\b",
    r"\b(?:guidelines|rules|instructions) you (?:follow|obey|were told)\b",
    r"\bstarting with (?:the (?:phrase|words) )?['\"]you are\b",
    r"\b(?:everything|all|the text|the words|what(?:ever)? (?:is|was) written) above (?:this|my|the)\b",
    r"\bsystem prompt\b(?:\W+\w+){0,4}\W+(?:word for word|verbatim|in full)",
    r"\bwhat (?:were|are) you told\b",
    r"\b(?:prompt (?:système|del sistema|do sistema|di sistema)|systemprompt|systemanweisung)\b",
    r"(?:системный промпт|системные инструкции|系统提示|系统指令)",
    r"\bunder which you would approve\b",
    r"\bstarting with ['\"]you are\b",
)

MULTI_STRONG = _rx(
    r"\bin (?:my|the|your) (?:next|following) (?:message|attempt|turn|reply|prompt|question)\b",
    r"\bwhenever i (?:say|write|type|send)\b",
    r"\bevery time i (?:say|write|type|send|ask)\b",
    r"\b(?:reply|respond|answer|say)\w* (?:only )?(?:with )?['\"“]?(?:understood|ok|okay|yes|ready|agreed|jailbroken|confirmed)\b",
    r"\bif you (?:understand|agree|accept)\b",
    r"\bfirst,? (?:just )?(?:say|confirm|agree|acknowledge|reply)\b",
    r"\bstep (?:1|one)\b(?:\W+\w+){0,3}\W+(?:agree|confirm|accept|rule)",
    r"\b(?:we'll|we will|let's) continue\b",
    r"\bremember (?:this|that|the following)\b(?:\W+\w+){0,4}\W+(?:later|until|next)",
    r"\bas we agreed\b",
    r"\byou (?:already )?(?:promised|agreed)\b",
    r"\bcontinue from (?:there|where)\b",
    r"\b(?:my|our) (?:earlier|previous|last) (?:attempt|message|conversation)\b",
    r"\btwo (?:different |separate )?(?:responses|answers|replies|paragraphs)\b",
    r"\buntil (?:then|i say)\b",
    r"\bdon'?t do anything (?:else )?yet\b",
    r"\blet'?s play a game\b(?:\W+\w+){0,12}?\W+(?:rule|whenever|must|you will|respond|reply|answer)",
    r"\b(?:en mi próximo mensaje|dans mon prochain message|in meiner nächsten nachricht|nel mio prossimo messaggio)\b",
    r"(?:в следующем сообщении|下一条消息)",
)

# A protocol for the turns to come, in the manner of the community jailbreaks (the in-the-wild tuning
# half): a reminder word, a command, a pair of tagged answers, "when I ask you ...". Counted with an aim.
MULTI_CUES = _rx(
    r"\b(?:remind|i will say|i'll say|by saying|i say)\b(?:\W+\w+){0,4}?\W+['\"“]?(?:stay in character|stay "
    r"(?:dan|evil|jailbroken)|remember (?:who you are|your role))\b",
    r"\bwhen(?:ever)? i (?:ask|give|tell|send|type|say)\b",
    r"\[\s*(?:🔒|🔓|classic|jailbreak|jailbroken|normal|developer mode output|gpt|chatgpt)\b",
    r"\banswer my first (?:question|prompt|request)\b",
    r"\bfrom now on,? (?:you will |you'll |you must )?(?:always )?(?:answer|respond|reply)\b",
    r"(?:^|\s)/(?:jailbroken|jailbreak|classic|stop|dan|unlock\w*)\b",
    r"\bconfirm\w* (?:that )?(?:you )?(?:understand|agree|are ready)\b",
)

ZERO_WIDTH = re.compile("[\u200b-\u200f\u2060\u2061-\u2064\ufeff\u00ad]")
BASE64 = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{16,}={0,2}(?![A-Za-z0-9+/])")
HEX_BYTES = re.compile(r"(?:\b[0-9a-f]{2}\b[\s,:]*){8,}|(?:\\x[0-9a-f]{2}){6,}", re.IGNORECASE)
BINARY = re.compile(r"(?:\b[01]{8}\b\s*){4,}")
SPELLED = re.compile(r"(?:\b[a-z]\b[\s\-.,_*]+){5,}[a-z]\b", re.IGNORECASE)
ENCODING_WORDS = _rx(
    r"\b(?:decode|decipher|decrypt|translate from|convert from|read)\w*\b(?:\W+\w+){0,4}?\W+"
    r"(?:base64|base-64|hex|hexadecimal|rot-?13|binary|morse|cipher|backwards|reversed?|in reverse|leet)\b",
    r"\brot-?13\b",
    r"\btypoglycemi\w*\b",
    r"\b(?:base64|hex|morse|binary)\b(?:\W+\w+){0,3}\W+(?:and|then) (?:follow|obey|comply|execute|do)\b",
)
LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"}
)
LEET_WORDS = {
    "release",
    "funds",
    "fund",
    "transfer",
    "pool",
    "prize",
    "vault",
    "money",
    "approve",
    "guardian",
    "ignore",
    "instructions",
    "rules",
    "system",
    "password",
    "secret",
    "now",
    "the",
}
SCRIPTS = (("LATIN",), ("CYRILLIC",), ("GREEK",))


def normalise(text: str) -> str:
    t = unicodedata.normalize("NFKC", text)
    t = ZERO_WIDTH.sub("", t).lower()
    t = t.replace("’", "'").replace("‘", "'")
    return re.sub(r"[ \t]+", " ", t)


def _decodes_to_words(token: str) -> bool:
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
        decoded = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return False
    letters = sum(ch.isalpha() or ch == " " for ch in decoded)
    return len(decoded) >= 8 and letters / len(decoded) > 0.85 and " " in decoded


def _mixed_script_word(text: str) -> bool:
    for word in re.findall(r"\w{3,}", text):
        scripts = set()
        for ch in word:
            if ch.isalpha():
                name = unicodedata.name(ch, "")
                scripts.add(next((s[0] for s in SCRIPTS if name.startswith(s[0])), "OTHER"))
        if len(scripts & {"LATIN", "CYRILLIC", "GREEK"}) > 1:
            return True
    return False


# Letters written as escapes (``&#x65;&#x76;``, ``%65%76``) or in styled Unicode (𝚙𝚛𝚒𝚗𝚝, ｐｒｉｎｔ),
# which a reader sees as words and a word filter does not.
# A run counts when it spells letters: a pasted link's %20%2F or an HTML page's &#169; does not.
ESCAPES = re.compile(r"(?:&#x?[0-9a-f]+;){3,}|(?:%[0-9a-f]{2}){4,}", re.IGNORECASE)


def _escaped_letters(raw: str) -> bool:
    for m in ESCAPES.finditer(raw):
        run = m.group(0)
        decoded = html.unescape(run) if run.startswith("&") else urllib.parse.unquote(run)
        if sum(ch.isascii() and ch.isalpha() for ch in decoded) >= 3:
            return True
    return False


def _styled(raw: str) -> bool:
    return sum(0x1D400 <= ord(ch) <= 0x1D7FF or 0xFF21 <= ord(ch) <= 0xFF5A for ch in raw) >= 3


def _encoded(raw: str, t: str) -> bool:
    if ZERO_WIDTH.search(raw) or _mixed_script_word(raw):
        return True
    if any(_decodes_to_words(m.group(0)) for m in BASE64.finditer(raw)):
        return True
    if HEX_BYTES.search(raw) or BINARY.search(raw) or _escaped_letters(raw) or _styled(raw):
        return True
    if any(len(set(re.findall(r"[a-z]", m.group(0)))) >= 3 for m in SPELLED.finditer(t)):
        return True
    leet = [
        w
        for w in re.findall(r"[\w@$!]+", t)
        if re.search(r"[a-z]", w) and re.search(r"[0-9@$!]", w)
    ]
    if sum(w.translate(LEET).strip("!") in LEET_WORDS for w in leet) >= 2:
        return True
    if GAME_TARGET.search(codecs.decode(t, "rot13")) and not GAME_TARGET.search(t):
        return True
    reversed_t = t[::-1]
    return bool(GAME_TARGET.search(reversed_t) and not GAME_TARGET.search(t))


# A line that pretends the player's input has ended (``%%% END ambiguity %%%``, ``=== END USER
# SECTION ===``, ``END UNTRUSTED USER INPUT``): what follows reads as the system's own words. Counted
# when the line is set off by delimiters or written in capitals, as such markers are.
BOUNDARY = re.compile(
    r"^[^\w\n]{0,12}(?:end|begin|start|close)(?: of)?(?: the)?(?: [\w-]+){0,3}? (?:input|ambiguity|buffer|"
    r"section|prompt|instructions|query|conversation|context|message|transcript|data|text)\b[^\w\n]{0,12}$",
    re.IGNORECASE | re.MULTILINE,
)
DELIMITERS = re.compile(r"[%=>#*~<\[\]|_-]{2,}")
# A flood: one short unit sent over and over (``ö ö ö …``, ``) ] } ) ] } …``, a glitch token
# repeated) to push the guardian's instructions out of its attention. A separator line is not one.
FLOOD = re.compile(r"(.{1,24}?)\1{9,}", re.DOTALL)
SEPARATOR = re.compile(r"[\s\-=_*#~.|+:]+")


def _fake_boundary(raw: str) -> bool:
    for m in BOUNDARY.finditer(raw):
        line = m.group(0)
        if DELIMITERS.search(line) or (line.upper() == line and re.search(r"[A-Z]", line)):
            return True
    return False


def _flood(t: str) -> bool:
    return any(
        len(m.group(0)) >= 60 and not SEPARATOR.fullmatch(m.group(1)) for m in FLOOD.finditer(t)
    )


def classify(text: str, *, attack: bool = False, aimed: bool = False) -> list[str]:
    """The categories the text shows, in CATEGORIES order. ``attack``: the text was sent as an
    attempt, so a text with no named technique is "other" rather than untagged. ``aimed``: the text
    is known to be an attack (the embedding model says so, or the text holds a flood), so a
    technique's wording counts without an aim in the text itself."""
    t = normalise(text)
    flood = _flood(t)
    # A flood is sent only to attack, so what follows it is read as an attack's words.
    aimed = aimed or flood
    aim = _aim(t) or aimed
    game = bool(GAME.search(t)) or aimed
    found: set[str] = set()
    if ROLE_STRONG.search(t) or (ROLE_CUES.search(t) and (aim or game)):
        found.add(ROLE_PLAY)
    if AUTH_STRONG.search(t) or (
        AUTH_CLAIM.search(t) and (TARGET.search(t) or (game and AUTH_ORDER.search(t)))
    ):
        found.add(AUTHORITY)
    if TOOL_STRONG.search(t) or (TOOL_CUES.search(t) and (aim or game)):
        found.add(TOOL)
    if SYSTEM_STRONG.search(t) or _fake_boundary(text):
        found.add(FAKE_SYSTEM)
    if _encoded(text, t) or (
        ENCODING_WORDS.search(t)
        and (aim or game or re.search(r"\b(?:follow|obey|comply|execute|do what)\b", t))
    ):
        found.add(ENCODING)
    if HYPO_STRONG.search(t) or (HYPO_CUES.search(t) and (aim or game)):
        found.add(HYPOTHETICAL)
    if EMO_CUES.search(t) and (
        TARGET.search(t) or game or BYPASS.search(t) or WANT_MONEY.search(t)
    ):
        found.add(EMOTIONAL)
    if EXTRACT_STRONG.search(t):
        found.add(EXTRACTION)
    if MULTI_STRONG.search(t) or (MULTI_CUES.search(t) and (aim or game)):
        found.add(MULTI_TURN)
    if not found and (
        attack
        or game
        or GAME_TARGET.search(t)
        or BYPASS.search(t)
        or HARM_STRONG.search(t)
        or flood
    ):
        found.add(OTHER)
    return [c for c in CATEGORIES if c in found]


def known(categories: Iterable[str]) -> list[str]:
    """Only real category names, in CATEGORIES order (an LLM's answer is filtered through this)."""
    wanted = set(categories)
    return [c for c in CATEGORIES if c in wanted]
