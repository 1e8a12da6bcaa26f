from .cvt_ls import CvTLS
from .mit import MiT, convert_mit_state_dict
from .vil_ls import ViLLS

__all__ = ['CvTLS', 'MiT', 'ViLLS', 'convert_mit_state_dict']
