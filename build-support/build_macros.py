# BUILD-file macros shared by the whole repo (loaded through [GLOBAL] build_file_prelude_globs).


def _on_both_pythons():
    # Library code runs inside Pants (CPython 3.9) and standalone on current Python: test on both.
    # (A function, not a module constant: prelude symbols must be hashable.)
    return parametrize(py39=["CPython==3.9.*"], py313=["CPython==3.13.*"])


def llbkit_tests(**kwargs):
    """Unit tests (`*_test.py`, no daemon), run on CPython 3.9 and 3.13."""
    kwargs.setdefault("name", "tests")
    kwargs.setdefault("sources", ["*_test.py", "!*_integration_test.py"])
    python_tests(interpreter_constraints=_on_both_pythons(), **kwargs)


def llbkit_integration_tests(**kwargs):
    """Tests against real daemons (`*_integration_test.py`), run on CPython 3.9 and 3.13.

    They share one batch per Python so that one pytest session, and so one set of fixture daemons
    (buildkitd on a unix socket, buildkitd on TCP+mTLS, registry), serves every integration test.
    """
    kwargs.setdefault("name", "integration_tests")
    kwargs.setdefault("sources", ["*_integration_test.py"])
    kwargs.setdefault("batch_compatibility_tag", "llbkit-daemons")
    kwargs.setdefault("tags", ["integration"])
    kwargs.setdefault("interpreter_constraints", _on_both_pythons())  # Pants-side tests: 3.9 only
    python_tests(**kwargs)
