"""Import the checkpoint code at the repository root as the package ``cre``.

``configuration_cre.py`` and ``modeling_cre.py`` sit flat at the root because that is the layout of a
Hugging Face custom-code checkpoint, and ``modeling_cre`` imports its config relatively
(``from .configuration_cre import ...``), as ``save_pretrained`` and ``trust_remote_code`` require.
Giving this module a ``__path__`` makes it a package over the root folder, so project code can write::

    from cre.modeling_cre import CREModel
    from cre.configuration_cre import CREConfig
"""

import os

__path__ = [os.path.dirname(os.path.abspath(__file__))]
