"""Ctrl-C while mmengine formats a config stays a KeyboardInterrupt.

``Config.pretty_text`` (used by ``Config.dump`` and thus by every Runner at start-up) wraps
yapf's formatting in a bare ``except:`` and raises ``SyntaxError: Failed to format the config
file`` for anything, a KeyboardInterrupt or SystemExit included.
"""


def make_config_dump_keep_interrupts():
    """Re-raise the KeyboardInterrupt / SystemExit that ``Config.pretty_text`` turned into a
    ``SyntaxError``; real formatting errors are unchanged."""
    from mmengine.config import Config
    original = Config.pretty_text.fget
    if hasattr(original, '__wrapped__'):
        return

    def pretty_text(self):
        try:
            return original(self)
        except SyntaxError as error:
            interrupt = error.__context__
            if isinstance(interrupt, BaseException) and not isinstance(interrupt, Exception):
                raise interrupt from None
            raise

    pretty_text.__wrapped__ = original
    Config.pretty_text = property(pretty_text)
