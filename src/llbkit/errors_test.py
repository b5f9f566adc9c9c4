from llbkit import errors


def test_every_stage_error_is_an_llbkit_error():
    for cls in (errors.LLBError, errors.BuildKitError, errors.OCIError):
        assert issubclass(cls, errors.LlbkitError)
        assert not issubclass(errors.LlbkitError, cls)
