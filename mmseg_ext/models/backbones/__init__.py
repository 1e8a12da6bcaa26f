from .mit import MiT, convert_mit_state_dict

__all__ = ['MiT', 'convert_mit_state_dict']
