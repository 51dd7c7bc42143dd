# imgbuild's Ansible callback plugin: it reports each play, task and
# result as one JSON line on standard output, after a tag imgbuild chose
# for the run (IMGBUILD_ANSIBLE_EVENTS), so that imgbuild can tell which
# task failed and why while Ansible's own output streams on. It changes
# nothing else. Written for ansible-core 2.9 and later.
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = '''
    name: imgbuild
    type: aggregate
    short_description: reports tasks and results to imgbuild
    description:
      - Prints one JSON line per play, task and result for imgbuild.
    requirements:
      - IMGBUILD_ANSIBLE_EVENTS set to the tag of the lines
'''

import json
import os
import sys

from ansible import __version__ as ansible_version
from ansible.plugins.callback import CallbackBase

MSG_LIMIT = 4000


def _text(v):
    if v is None:
        return ''
    if isinstance(v, (list, tuple)):
        return '\n'.join(_text(x) for x in v)
    if isinstance(v, dict):
        return json.dumps(v, sort_keys=True, default=str)
    return '%s' % (v,)


def _message(r):
    """What went wrong, as a person would say it, from a module result."""
    if not isinstance(r, dict):
        return _text(r)
    for item in r.get('results') or []:
        if isinstance(item, dict) and (item.get('failed') or item.get('unreachable')):
            m = _message(item)
            if 'item' in item and m:
                return 'item %s: %s' % (_text(item.get('item')), m)
            return m
    parts = []
    msg = _text(r.get('msg')).strip()
    if msg:
        parts.append(msg)
    if r.get('rc') not in (None, 0) and 'cmd' in r:
        parts.append('exit status %s' % r.get('rc'))
    for k in ('stderr', 'module_stderr'):
        v = _text(r.get(k)).strip()
        if v and v not in msg:
            parts.append(v)
    if not parts:
        v = _text(r.get('module_stdout')).strip() or _text(r.get('exception')).strip()
        if v:
            parts.append(v.splitlines()[-1])
    return '\n'.join(parts)[:MSG_LIMIT]


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'imgbuild'
    CALLBACK_NEEDS_ENABLED = True
    CALLBACK_NEEDS_WHITELIST = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._tag = os.environ.get('IMGBUILD_ANSIBLE_EVENTS', '')
        self._task = None

    def _emit(self, event, **fields):
        if not self._tag:
            return
        fields['event'] = event
        line = self._tag + ' ' + json.dumps(fields, sort_keys=True, default=str) + '\n'
        sys.stdout.write(line)
        sys.stdout.flush()

    @staticmethod
    def _path(task):
        try:
            p = task.get_path()
        except Exception:
            p = None
        return p or ''

    def v2_playbook_on_start(self, playbook):
        self._emit('start', ansible=ansible_version, playbook=getattr(playbook, '_file_name', ''))

    def v2_playbook_on_play_start(self, play):
        self._emit('play', name=play.get_name().strip())

    def _start(self, task, handler):
        self._task = task
        self._emit('task', name=task.get_name().strip(), path=self._path(task), handler=handler)

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._start(task, False)

    def v2_playbook_on_handler_task_start(self, task):
        self._start(task, True)

    def _result(self, event, result, **extra):
        task = result._task
        r = result._result if isinstance(result._result, dict) else {}
        self._emit(event, host=result._host.get_name(), task=task.get_name().strip(),
                   path=self._path(task), changed=bool(r.get('changed')), **extra)

    def v2_runner_on_ok(self, result):
        self._result('ok', result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result('failed', result, msg=_message(result._result), ignored=bool(ignore_errors))

    def v2_runner_on_unreachable(self, result):
        self._result('unreachable', result, msg=_message(result._result))

    def v2_runner_on_skipped(self, result):
        self._result('skipped', result)

    def v2_playbook_on_stats(self, stats):
        hosts = {}
        for h in sorted(stats.processed.keys()):
            hosts[h] = stats.summarize(h)
        self._emit('stats', hosts=hosts)
